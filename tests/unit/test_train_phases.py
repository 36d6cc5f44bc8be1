"""The training loop's rules on a tiny random BERT: what is kept, what stops it, what it resumes from."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bioner.config import build_config
from bioner.errors import ModelError, TrainingError
from bioner.files import RunLock
from bioner.models.runtime import _glibc
from bioner.recipes import tasks
from bioner.recipes import train as train_module
from bioner.recipes.train import SELECT_LAST, train
from tests.helpers import tiny_bert_folder

SAMPLE = Path(__file__).parents[2] / "src" / "bioner" / "data" / "sample"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert_folder(tmp_path_factory.mktemp("bert"))


def _config(base: Path, *extra: str, dev: bool = True):  # type: ignore[no-untyped-def]
    splits = [f"data.train={SAMPLE / 'train.txt'}", f"data.test={SAMPLE / 'test.txt'}"]
    if dev:
        splits.append(f"data.dev={SAMPLE / 'dev.txt'}")
    return build_config("cpu", overrides=[*splits, f"model.name={base}", "data.limit_train=48",
                                          "data.limit_eval=16", "model.max_subwords=64", "model.stride=16",
                                          "train.test_bootstrap=0", "train.precision=fp32", *extra])


def test_without_a_dev_split_the_last_epoch_is_kept_and_said(base: Path, tmp_path: Path) -> None:
    result = train(_config(base, "train.epochs=2", dev=False), tmp_path / "run")
    assert result.best_epoch == 2 and result.best_dev_f1 is None and result.selection == SELECT_LAST
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e["selection"] for e in epochs] == [SELECT_LAST, SELECT_LAST]
    assert all("dev" not in e for e in epochs)  # no made-up dev figure (it used to be -train loss)
    report = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert report["selection"] == SELECT_LAST and report["best_epoch"] == 2


def test_a_non_finite_loss_stops_training_before_it_reaches_the_weights(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = tasks.TokenTask.loss

    def loss(self, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        value = real(self, batch)
        return value * math.nan if calls["n"] == 2 else value

    monkeypatch.setattr(tasks.TokenTask, "loss", loss)
    with pytest.raises(TrainingError, match=r"loss became nan at step 2 \(epoch 1\).*train\.lr"):
        train(_config(base, "train.epochs=1"), tmp_path / "run")
    assert not (tmp_path / "run" / "model").exists()  # nothing was saved as "best"


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(base: Path, tmp_path: Path) -> None:
    config = _config(base, "train.epochs=1", "train.checkpoint_every_steps=1", "train.batch_size=16")
    run = tmp_path / "run"
    train(config, run)
    good = run / "checkpoint"
    (run / "checkpoint.old").mkdir()
    for f in good.iterdir():
        (run / "checkpoint.old" / f.name).write_bytes(f.read_bytes())
    weights = good / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (run / "eval_test.json").unlink()
    result = train(config, run, resume=True)  # the .old copy is whole: resumes from it
    assert result.best_epoch == 1
    (run / "checkpoint.old" / "state.json").write_text("{broken", encoding="utf-8")
    weights = run / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelError, match=r"model\.safetensors: damaged checkpoint.*state\.json: damaged checkpoint"):
        train(config, run, resume=True)


def test_a_run_folder_is_locked_while_written(base: Path, tmp_path: Path) -> None:
    with RunLock(tmp_path / "run"), pytest.raises(Exception, match="being written by pid"):
        train(_config(base, "train.epochs=1"), tmp_path / "run")


def test_the_recorded_precision_is_the_one_used(base: Path, tmp_path: Path) -> None:
    from bioner.models import load_tagger

    train(_config(base, "train.epochs=1"), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "model" / "tagger.json").read_text())
    assert meta["precision"] == "fp32" and meta["trained_precision"] == "fp32"
    assert "trust_remote_code" not in meta
    assert load_tagger(tmp_path / "run").precision == "fp32"
    assert load_tagger(tmp_path / "run", precision="bf16").precision == "bf16"


def test_a_time_budget_spent_inside_an_epoch_stops_there(base: Path, tmp_path: Path) -> None:
    """48 sentences in batches of 8 = 6 steps an epoch; a budget spent after the first step stops
    the run at that step, scores the partial epoch and keeps it (nothing else to keep)."""
    result = train(_config(base, "train.epochs=3", "train.batch_size=8", "train.max_train_seconds=0.001"),
                   tmp_path / "run")
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 1 and epochs[0]["steps"] == 1
    assert epochs[0]["stopped"] == "time budget reached after 1 of 6 steps"
    assert result.epochs_run == 1 and result.best_epoch == 1 and (tmp_path / "run" / "model").is_dir()


def _page_faults_for_a_large_block() -> int:
    import resource

    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(12_000_000)  # 48 MB, over glibc's largest mmap threshold (32 MB)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _huge_pages_always() -> bool:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return path.exists() and "[always]" in path.read_text()


@pytest.mark.skipif(_glibc() is None, reason="keep_freed_memory tunes glibc's allocator only")
@pytest.mark.skipif(_huge_pages_always(), reason="with transparent huge pages always on, a fresh "
                    "48 MB block faults in a few dozen huge pages: nothing to tell apart")
def test_keep_freed_memory_reuses_a_freed_large_block_and_then_restores_the_defaults() -> None:
    import torch

    from bioner.models.runtime import keep_freed_memory

    pages = 12_000_000 * 4 // 4096
    assert _page_faults_for_a_large_block() > pages // 2  # mapped afresh, faulted in page by page
    with keep_freed_memory(torch.device("cpu")):
        faults = [_page_faults_for_a_large_block() for _ in range(8)]
    # the heap grows for the first one or two (whatever else the process allocates in between
    # may take the freed block's place); then the block is found again, already mapped
    assert sum(faults[-4:]) < pages // 10, faults
    assert _page_faults_for_a_large_block() > pages // 2  # glibc's defaults are back


def test_the_epochs_run_inside_keep_freed_memory(base: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    inside: list[bool] = []
    devices: list[str] = []
    active = [False]

    @contextlib.contextmanager
    def recording(device: Any) -> Iterator[None]:
        devices.append(device.type)
        active[0] = True
        try:
            yield
        finally:
            active[0] = False

    run_epoch = train_module.run_epoch

    def watched(*args: Any, **kwargs: Any) -> dict[str, Any]:
        inside.append(active[0])
        return run_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "keep_freed_memory", recording)
    monkeypatch.setattr(train_module, "run_epoch", watched)
    train(_config(base, "train.epochs=2"), tmp_path / "run")
    assert devices == ["cpu"] and inside == [True, True]
