"""Run every cell of a spec: train → evaluate on test → measure inference cost.

One run folder per cell (``OUT/DATASET/TAGGER/seed-N``).  Finished cells are skipped, an
interrupted one resumes from its checkpoint, a failing one records ``error.json`` and the
others go on.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from bioner.config import build_config
from bioner.corpus.conll import read_conll, write_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.experiments.spec import (
    ExperimentSpec,
    TaggerSpec,
    dataset_folder_name,
    out_dir,
)
from bioner.files import write_text_atomic
from bioner.recipes.checkpoint import find_checkpoint

log = logging.getLogger(__name__)
DONE_FILES = ("eval_test.json", "cost.json", "pred_test.conll")


@dataclass(frozen=True, slots=True)
class Cell:
    dataset: str
    tagger: TaggerSpec
    seed: int

    def folder(self, root: Path) -> Path:
        return root / dataset_folder_name(self.dataset) / self.tagger.name / f"seed-{self.seed}"


def cells(spec: ExperimentSpec) -> list[Cell]:
    return [Cell(d, t, s) for d in spec.datasets for t in spec.taggers for s in spec.seeds]


def cell_state(folder: Path) -> str:
    if all((folder / f).is_file() for f in DONE_FILES):
        return "done"
    if (folder / "error.json").is_file():
        return "failed"
    if find_checkpoint(folder) is not None or (folder / "config.yaml").is_file():
        return "partial"
    return "pending"


def measure_cost(tagger: Any, token_lists: list[list[str]], repeats: int) -> dict[str, Any]:
    """Prediction cost through the one cost meter (:func:`bioner.bench.cost.measure`)."""
    from bioner.bench.cost import measure

    return measure(tagger, token_lists, repeats=repeats, latency_samples=min(50, len(token_lists)),
                   warmup=8).to_dict()


def run_cell(spec: ExperimentSpec, cell: Cell, folder: Path) -> None:
    from bioner.models import load_tagger
    from bioner.recipes.train import train

    t = cell.tagger
    model = t.model
    if model.startswith("tiny:"):  # a random decoder built for this dataset (CPU demos)
        from bioner.models.tiny import corpus_texts, tiny_decoder

        model_dir = folder.parents[2] / "tiny-models" / f"{model[5:]}-{dataset_folder_name(cell.dataset)}"
        if not (model_dir / "config.json").is_file():
            train_split = list(islice(read_conll(resolve_dataset(cell.dataset).path("train")), spec.limit_train))
            tiny_decoder(model_dir, model[5:], corpus_texts(train_split), hidden=128)
        model = str(model_dir)
    flags = {"data": {"dataset": cell.dataset, "limit_train": spec.limit_train, "limit_eval": spec.limit_eval},
             "model": {"kind": t.kind, "name": model}, "train": {"seed": cell.seed}}
    config = build_config(t.preset, flags=flags, overrides=list(t.overrides))
    if not (folder / "eval_test.json").is_file():
        started = time.perf_counter()
        result = train(config, folder, resume=(folder / "config.yaml").is_file())
        write_text_atomic(folder / "train_time.json", json.dumps({
            "train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - started,
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch}))
    test = list(islice(read_conll(resolve_dataset(cell.dataset).path("test")), spec.limit_eval))
    tagger = load_tagger(folder, backend="torch")
    write_conll(tagger.predict_sentences(test), folder / "pred_test.conll")
    cost = measure_cost(tagger, [s.tokens for s in test[: spec.cost_sentences]], spec.cost_repeats)
    timing = json.loads((folder / "train_time.json").read_text()) if (folder / "train_time.json").is_file() else {}
    cost["train_seconds"] = timing.get("train_seconds")
    write_text_atomic(folder / "cost.json", json.dumps(cost, indent=1))


def run(spec: ExperimentSpec, spec_path: Path, echo: Any = print) -> dict[str, str]:
    root = out_dir(spec, spec_path)
    states = {}
    for cell in cells(spec):
        folder = cell.folder(root)
        name = f"{dataset_folder_name(cell.dataset)}/{cell.tagger.name}/seed-{cell.seed}"
        if cell_state(folder) == "done":
            echo(f"skip  {name} (done)")
            states[name] = "done"
            continue
        (folder / "error.json").unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        echo(f"run   {name}")
        try:
            run_cell(spec, cell, folder)
            states[name] = "done"
        except Exception as exc:  # one bad cell must not stop the grid
            write_text_atomic(folder / "error.json", json.dumps({
                "error": str(exc), "type": exc.__class__.__name__, "traceback": traceback.format_exc()}, indent=1))
            echo(f"FAIL  {name}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            states[name] = "failed"
    return states
