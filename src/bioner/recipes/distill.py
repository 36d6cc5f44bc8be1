"""Distillation: an expensive tagger (or an ensemble) teaches a cheap student on unlabelled text.

``distill(config, run_dir)`` runs in two steps, both resumable:

1. **Pseudo-labelling** (:func:`pseudo_label`): unlabelled files (raw text, JSONL, PubTator,
   BioC, or CoNLL with its tags ignored) are split and tokenised the bioner way; a sentence
   that also occurs in the target dataset's dev or test split (lower-cased tokens, exact match)
   or earlier in the unlabelled text is dropped and counted.  Each teacher gives per-word tag
   distributions (CRF marginals or softmax, at ``distill.temperature``; generative teachers
   give one-hot rows of their tags), averaged over teachers — for one-hot rows the average is
   the vote share, so its argmax is the majority vote.  They are written to
   ``run_dir/pseudo/`` in chunks (a chunk is written whole, then the manifest), so an
   interrupted run continues at the next chunk.
2. **Training** (:mod:`bioner.recipes.train`, the ordinary loop) on gold + pseudo-labelled
   sentences with :class:`bioner.recipes.tasks.DistillTask`: the student's own loss (cross-entropy or CRF) on gold
   tags and on the teacher's argmax tags, plus ``alpha · T² · KL(teacher_T ‖ student_T)`` on the
   pseudo-labelled words (``distill.hard``: the argmax tags only).  Selection is on gold dev;
   the result is an ordinary run folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bioner.config import RunConfig
from bioner.corpus.bio import repair_bio
from bioner.corpus.conll import read_conll
from bioner.corpus.formats import guess_format, read_documents
from bioner.corpus.text import text_to_sentences
from bioner.errors import ConfigError, InputError
from bioner.files import RunLock, write_text_atomic
from bioner.models.folder import model_fingerprint
from bioner.recipes.pseudo import MANIFEST, PSEUDO, write_chunk
from bioner.recipes.train import label_set, load_split, split_paths, train

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- unlabelled text


def sentence_key(tokens: Sequence[str]) -> str:
    """What counts as the same sentence: its tokens, lower-cased, single-spaced."""
    return " ".join(tokens).lower()


def read_unlabeled(paths: Sequence[str]) -> Iterator[list[str]]:
    """Token lists of every sentence of the files, in order; CoNLL tags are never read."""
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise InputError(f"unlabelled file {path} does not exist")
        fmt = guess_format(path)
        if fmt == "conll":
            for sent in read_conll(path):
                yield list(sent.tokens)
            continue
        for doc in read_documents(path, fmt):
            for sent in text_to_sentences(doc.text, doc.id):
                yield list(sent.tokens)


@dataclass(slots=True)
class PseudoStats:
    read: int = 0
    kept: int = 0
    dropped_in_dev_or_test: int = 0
    duplicates: int = 0
    empty: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- pseudo-labelling


def ensemble_distributions(teachers: Sequence[Any], token_lists: Sequence[Sequence[str]],
                           temperature: float = 1.0) -> list[torch.Tensor]:
    """Per sentence, the teachers' (words, labels) distributions averaged (for one-hot rows of
    generative teachers the average is the vote share, so its argmax is the majority vote)."""
    per_teacher = [t.word_distributions(token_lists, temperature) for t in teachers]
    return [torch.stack([p[k] for p in per_teacher]).mean(0) for k in range(len(token_lists))]


def ensemble_tags(teachers: Sequence[Any], token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
    """The ensemble's own prediction: the argmax of the averaged distributions, as valid IOB2."""
    labels = teachers[0].labels
    return [repair_bio([labels[i] for i in d.argmax(-1).tolist()])[0]
            for d in ensemble_distributions(teachers, token_lists)]


def pseudo_label(config: RunConfig, run_dir: Path, labels: list[str], held_out: set[str]) -> PseudoStats:
    """Label the unlabelled text with the teachers into ``run_dir/pseudo`` (resumable by chunk)."""
    from bioner.models.loading import load_tagger

    d = config.distill
    assert d is not None
    folder = run_dir / PSEUDO
    folder.mkdir(parents=True, exist_ok=True)
    fingerprints = [model_fingerprint(Path(t)) for t in d.teachers]
    manifest_path = folder / MANIFEST
    manifest: dict[str, Any] = {"teachers": list(d.teachers), "fingerprints": fingerprints, "labels": labels,
                                "temperature": d.temperature, "unlabeled": list(d.unlabeled), "chunks": [],
                                "complete": False}
    if manifest_path.is_file():
        saved = json.loads(manifest_path.read_text(encoding="utf-8"))
        if {k: saved.get(k) for k in ("fingerprints", "labels", "temperature", "unlabeled")} != \
                {k: manifest[k] for k in ("fingerprints", "labels", "temperature", "unlabeled")}:
            raise ConfigError(f"{folder} holds pseudo-labels from other teachers, labels, temperature or text; "
                              "use a new --out")
        manifest = saved
        if manifest.get("complete"):
            return PseudoStats(**manifest["stats"])
    teachers = [load_tagger(t, backend="torch") for t in d.teachers]
    for t, name in zip(teachers, d.teachers):
        if list(t.labels) != labels:
            raise ConfigError(f"teacher {name} tags {t.labels}; the student's dataset has {labels}. "
                              "Teachers must be trained on the same label set")
    stats = PseudoStats()
    done = len(manifest["chunks"])
    seen: set[str] = set()
    chunk: list[list[str]] = []
    started = time.perf_counter()

    def flush(index: int) -> None:
        if index < done:  # written by an earlier, interrupted run: the same sentences in the same order
            return
        name = write_chunk(folder, index, chunk, ensemble_distributions(teachers, chunk, d.temperature))
        manifest["chunks"].append({"name": name, "sentences": len(chunk)})
        write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
        log.info("pseudo-labelled chunk %d (%d sentences)", index, len(chunk))

    index = 0
    for tokens in read_unlabeled(d.unlabeled):
        if d.limit_unlabeled is not None and stats.kept >= d.limit_unlabeled:
            break
        stats.read += 1
        if not tokens:
            stats.empty += 1
            continue
        key = sentence_key(tokens)
        if key in held_out:
            stats.dropped_in_dev_or_test += 1
            continue
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        stats.kept += 1
        chunk.append(tokens)
        if len(chunk) >= d.chunk_sentences:
            flush(index)
            index += 1
            chunk = []
    if chunk:
        flush(index)
    stats.seconds = round(time.perf_counter() - started, 2)
    manifest["complete"] = True
    manifest["stats"] = stats.to_dict()
    write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    return stats


# ---------------------------------------------------------------- the command


def distill(config: RunConfig, run_dir: Path, resume: bool = False) -> tuple[Any, PseudoStats]:
    """Pseudo-label (resumable), then train the student on gold + pseudo-labelled text."""
    if config.distill is None:
        raise ConfigError("no distill section: give teachers and unlabelled text")
    paths = split_paths(config)
    train_s = load_split(paths["train"], config.data.limit_train)
    evals = {s: load_split(paths[s], None) for s in ("dev", "test") if s in paths}
    labels = label_set(train_s, evals).tags
    held_out = {sentence_key(s.tokens) for split in evals.values() for s in split}
    with RunLock(run_dir):
        if not resume and ((run_dir / "model").exists() or (run_dir / "eval_test.json").exists()):
            raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        stats = pseudo_label(config, run_dir, labels, held_out)
        write_text_atomic(run_dir / "distill.json", json.dumps({
            "teachers": list(config.distill.teachers), "unlabeled": list(config.distill.unlabeled),
            "alpha": config.distill.alpha, "temperature": config.distill.temperature, "hard": config.distill.hard,
            "pseudo_labelling": stats.to_dict()}, indent=1))
    if stats.kept == 0:
        raise InputError("no unlabelled sentence is left to pseudo-label (all empty, duplicated or in dev/test)")
    return train(config, run_dir, resume=resume), stats
