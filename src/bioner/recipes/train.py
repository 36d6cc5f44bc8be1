"""The training recipe for every tagger kind, one plain loop in phases:
``setup`` → ``run_epoch`` → ``select`` (after each epoch) → ``final_test``.

A run folder ends up holding ``model/`` (the selected epoch: safetensors, tokenizer,
``labels.json``, ``tagger.json``), ``config.yaml`` (resolved config + data hashes + package
versions + the precision used), ``metrics.jsonl`` (one line per epoch) and ``eval_test.json``.
``checkpoint/`` is rewritten every N steps so ``resume=True`` continues after a kill with the
same result as an uninterrupted run.  The folder is locked while a process writes it.

Selection: with a dev split, the epoch with the best dev strict F1 is kept; without one, the
last epoch is kept (and the report says so — no dev figure is made up).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from bioner.config import RunConfig, load_config, save_config
from bioner.corpus.conll import read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.corpus.labels import LabelSet, types_of
from bioner.corpus.types import Sentence
from bioner.encoding.batches import length_grouped_batches
from bioner.errors import ConfigError, DatasetNotFoundError, ModelError, TrainingError
from bioner.evaluate import Report, evaluate, evaluate_tagger
from bioner.files import (
    RunLock,
    file_sha256,
    write_folder_atomically,
    write_text_atomic,
)
from bioner.models.dropout import use_cpu_dropout
from bioner.models.encoder import forward_flops
from bioner.models.runtime import (
    Precision,
    autocast,
    keep_freed_memory,
    pick_device,
    resolve_precision,
    set_threads,
)
from bioner.recipes import distributed
from bioner.recipes.checkpoint import (
    find_checkpoint,
    find_checkpoints,
    load_averaged,
    load_checkpoint,
    save_checkpoint,
)
from bioner.recipes.optim import WeightAverage, linear_schedule, make_optimizer
from bioner.recipes.tasks import GenerativeTask, TokenTask, make_task

log = logging.getLogger(__name__)
SELECT_DEV = "best dev strict F1"
SELECT_LAST = "last epoch (no dev split)"


@dataclass(slots=True)
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_dev_f1: float | None  # None without a dev split
    epochs_run: int
    train_seconds: float
    test_report: Report | None
    selection: str = SELECT_DEV


@dataclass(slots=True)
class TrainState:
    """Everything the loop changes; saved in every checkpoint so a resumed run continues exactly."""

    labels: list[str]
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_dev_f1: float | None = None
    best_epoch: int = 0  # 0: nothing saved yet
    bad_epochs: int = 0
    stopped: bool = False
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_n: int = 0
    losses: list[float] = field(default_factory=list)
    tokens: int = 0  # sub-words trained on in this epoch (this rank)
    tokens_squared: int = 0  # the sum of their windows' lengths squared (attention FLOPs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: Path) -> TrainState:
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"{where}: not a bioner training state ({exc})") from None


@dataclass(slots=True)
class Setup:
    """What ``setup`` builds once: data, the task (model + encoding), optimiser and schedule."""

    config: RunConfig
    run_dir: Path
    task: TokenTask | GenerativeTask
    examples: list[Any]
    evals: dict[str, list[Sentence]]
    device: torch.device
    precision: Precision
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    average: WeightAverage | None
    world: distributed.World = distributed.ALONE
    step_loss: Any = None  # batch → loss: the task's loss, through DDP when several processes train


# ---------------------------------------------------------------- data


def split_paths(config: RunConfig) -> dict[str, Path]:
    data = config.data
    paths: dict[str, Path] = {}
    if data.dataset:
        paths.update(resolve_dataset(data.dataset).splits)
    for split in ("train", "dev", "test"):
        explicit = getattr(data, split)
        if explicit:
            paths[split] = Path(explicit)
    if "train" not in paths:
        raise DatasetNotFoundError("no training data: give --dataset NAME|FOLDER or --train FILE")
    for split, path in paths.items():
        if not path.is_file():
            raise DatasetNotFoundError(f"{split} file {path} does not exist")
    return paths


def load_split(path: Path, limit: int | None) -> list[Sentence]:
    sentences = list(islice(read_conll(path), limit))
    if not sentences:
        raise DatasetNotFoundError(f"{path} holds no sentences: an empty corpus cannot be used")
    if any(s.tags is None for s in sentences[:1]):
        raise DatasetNotFoundError(f"{path} has no tag column: training and evaluation need tags")
    return sentences


def label_set(train: list[Sentence], others: dict[str, list[Sentence]]) -> LabelSet:
    types = set().union(*(types_of(s.tags or []) for s in train))
    for split, sents in others.items():
        extra = set().union(*(types_of(s.tags or []) for s in sents)) - types
        if extra:
            raise ConfigError(
                f"the {split} split has entity types the train split lacks: {', '.join(sorted(extra))}. "
                "The model could never predict them; fix the label sets or use another split."
            )
    return LabelSet.from_types(types)


def evaluate_task(task: TokenTask | GenerativeTask, sentences: list[Sentence], bootstrap: int = 0,
                  seed: int = 42) -> Report:
    task.module.eval()
    tagger = task.tagger()
    report = evaluate(sentences, tagger.predict_sentences(sentences), bootstrap=bootstrap, seed=seed)
    report.extra.update(tagger.report_extra())
    return report


# ---------------------------------------------------------------- phases


def setup(config: RunConfig, run_dir: Path, resume: bool,
          world: distributed.World = distributed.ALONE) -> tuple[Setup, TrainState]:
    t = config.train
    set_threads(t.threads)
    checkpoints = find_checkpoints(run_dir) if resume else []
    if resume and (run_dir / "config.yaml").is_file():
        saved = load_config(run_dir / "config.yaml")
        if saved != config:
            raise ConfigError(f"{run_dir}/config.yaml differs from this run's config; resume with the "
                              f"same settings (or `--config {run_dir}/config.yaml`), or use a new --out")
    elif not resume and (find_checkpoint(run_dir) or (run_dir / "eval_test.json").exists()
                         or (run_dir / "model").exists()):
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")

    paths = split_paths(config)
    train_s = load_split(paths["train"], config.data.limit_train)
    evals = {s: load_split(paths[s], config.data.limit_eval) for s in ("dev", "test") if s in paths}
    labels = label_set(train_s, evals).tags
    device = pick_device()
    precision = resolve_precision(t.precision, device)
    distributed.init(world, device)
    if world.main:
        save_config(config, run_dir / "config.yaml", {
            "data_files": {s: {"path": str(p), "sha256": file_sha256(p)} for s, p in paths.items()},
            "labels": labels, "n_train_sentences": len(train_s),
            "n_eval_sentences": {s: len(v) for s, v in evals.items()},
            "device": str(device), "precision": precision,
            "selection": SELECT_DEV if "dev" in evals else SELECT_LAST,
            "processes": world.size, "effective_batch_size": t.batch_size * world.size,
        })

    torch.manual_seed(t.seed)
    task = make_task(config, labels, precision, run_dir)
    if device.type == "cpu":  # torch's CPU dropout sampler is serial mt19937: see bioner.models.dropout
        sites = use_cpu_dropout(task.module)
        log.debug("PCG64 dropout in %d places", sites)
    examples = task.examples(train_s)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / t.batch_size) / world.size)
    total_steps = steps_per_epoch * t.epochs
    optimizer = make_optimizer(task.module, config)
    scheduler = linear_schedule(optimizer, int(t.warmup_ratio * total_steps), total_steps)
    average = WeightAverage(task.module, t.ema) if t.ema else None
    state = TrainState(labels=labels)
    checkpoint, state = _restore(checkpoints, task.module, optimizer, scheduler) if checkpoints else (None, state)
    if checkpoint is not None:
        if state.labels != labels:
            raise ModelError(f"{checkpoint} was trained on labels {state.labels}, this data has {labels}")
        if average is not None:
            saved_average = load_averaged(checkpoint)
            if saved_average is None:
                raise ConfigError(f"{checkpoint} holds no weight average; it was written without train.ema")
            average.load(saved_average)
        log.info("resuming at epoch %d step %d", state.epoch, state.step_in_epoch)
    if "dev" not in evals and t.patience is not None:
        log.warning("no dev split: train.patience is ignored and the last epoch is kept")
    if world.active:
        log.info("%d processes: effective batch %d sentences (train.batch_size %d per process), lr %g and "
                 "head lr %s as configured (not scaled)", world.size, t.batch_size * world.size, t.batch_size,
                 t.lr, t.head_lr)
    step_loss = distributed.wrap(task.module, task.loss, world, device)
    return Setup(config, run_dir, task, examples, evals, device, precision, optimizer, scheduler,
                 average, world, step_loss), state


def _restore(checkpoints: list[Path], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LambdaLR) -> tuple[Path, TrainState]:
    """The newest checkpoint that loads; a damaged one is reported and the previous one tried."""
    problems = []
    for folder in checkpoints:
        try:
            return folder, TrainState.from_json(load_checkpoint(folder, model, optimizer, scheduler), folder)
        except ModelError as exc:
            log.warning("%s; trying the previous checkpoint", exc)
            problems.append(str(exc))
    raise ModelError("no checkpoint in the run folder can be resumed: " + "; ".join(problems)
                     + ". Start again with a new --out (or delete the checkpoint folders).")


def _checkpoint(s: Setup, state: TrainState) -> None:
    save_checkpoint(s.run_dir, s.task.module, s.optimizer, s.scheduler, state.to_json(),
                    s.average.state() if s.average else None)


def run_epoch(s: Setup, state: TrainState, show: bool) -> dict[str, Any]:
    """One pass over the training batches (from ``state.step_in_epoch`` when resuming)."""
    t = s.config.train
    model = s.task.module
    epoch = state.epoch
    lengths = [len(w) for w in s.examples]
    batches = length_grouped_batches(lengths, t.batch_size, seed=t.seed * 1000 + epoch) \
        if t.group_by_length else _plain_batches(len(s.examples), t.batch_size, t.seed * 1000 + epoch)
    batches = distributed.shard_batches(batches, s.world)  # every rank: the same number of steps
    bar = tqdm(total=len(batches), initial=state.step_in_epoch, disable=not show or not s.world.main,
               desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch", leave=False)
    started = epoch_started = time.perf_counter()
    tokens_before, squared_before = state.tokens, state.tokens_squared
    budget_stop = None
    for idx in batches[state.step_in_epoch:]:
        model.train()
        batch = {k: v.to(s.device) for k, v in s.task.collate([s.examples[i] for i in idx]).items()}
        state.tokens += sum(len(s.examples[i]) for i in idx)
        state.tokens_squared += sum(len(s.examples[i]) ** 2 for i in idx)
        with autocast(s.device, s.precision):
            loss = s.step_loss(batch)
        value = distributed.mean_across(loss, s.world)
        if not math.isfinite(value):
            bar.close()
            raise TrainingError(
                f"the training loss became {value} at step {state.global_step + 1} (epoch {epoch + 1}); "
                f"stopped before it reached the weights. Lower train.lr (now {t.lr:g}) or "
                f"train.head_lr, or try train.precision=fp32. {s.run_dir / 'model'} keeps the last "
                "selected epoch, if any.")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip, foreach=True)
        s.optimizer.step()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        if s.average is not None:
            s.average.update()
        state.step_in_epoch += 1
        state.global_step += 1
        state.loss_sum += value
        state.loss_n += 1
        state.losses.append(round(value, 5))
        bar.update(1)
        bar.set_postfix(loss=f"{state.loss_sum / state.loss_n:.4f}")
        if t.max_train_seconds is not None and distributed.any_across(
                state.train_seconds + time.perf_counter() - started >= t.max_train_seconds, s.world):
            # the budget is spent inside an epoch (one epoch can outlast it, e.g. a student's
            # pseudo-labelled text): stop here; this partial epoch is scored and may be kept
            state.stopped = True
            budget_stop = f"time budget reached after {state.step_in_epoch} of {len(batches)} steps"
            log.info("epoch %d: %s", epoch + 1, budget_stop)
            break
        if state.global_step % t.checkpoint_every_steps == 0 and state.step_in_epoch < len(batches):
            state.train_seconds += time.perf_counter() - started
            started = time.perf_counter()
            if s.world.main:
                _checkpoint(s, state)
    bar.close()
    state.train_seconds += time.perf_counter() - started
    seconds = time.perf_counter() - epoch_started  # this process's part of the epoch (all of it unless resumed)
    quarter = max(1, len(state.losses) // 4)
    tokens = int(distributed.mean_across(torch.tensor(float(state.tokens)), s.world) * s.world.size)
    run_here = int(distributed.mean_across(torch.tensor(float(state.tokens - tokens_before)), s.world) * s.world.size)
    squared_here = distributed.mean_across(torch.tensor(float(state.tokens_squared - squared_before)), s.world) \
        * s.world.size
    flops = forward_flops(s.task.module, run_here, int(squared_here))
    return {
        "epoch": epoch + 1, "train_loss": state.loss_sum / max(1, state.loss_n),
        "train_loss_first_quarter": sum(state.losses[:quarter]) / quarter,
        "train_loss_last_quarter": sum(state.losses[-quarter:]) / quarter,
        "steps": state.global_step, "train_seconds": round(state.train_seconds, 2),
        # sub-word tokens (padding excluded) of this epoch's run, over all processes
        "train_tokens": tokens, "train_tokens_per_s": round(run_here / seconds, 1) if seconds else None,
        # model FLOPs (3x the forward pass) per second over all processes; cost.cpu_peak_flops states the peak
        "train_flops_per_s": float(f"{3 * flops / seconds:.4g}") if flops and seconds else None,
        "processes": s.world.size, "effective_batch_size": t.batch_size * s.world.size,
        **({"stopped": budget_stop} if budget_stop else {}),
    }


def select(s: Setup, state: TrainState, record: dict[str, Any]) -> TrainState:
    """Score the epoch, keep its model if it is the one to keep, decide whether to stop, and
    checkpoint the end of the epoch.  With several processes rank 0 does it and the others
    take its state."""
    if s.world.active:
        same = distributed.weights_agree(s.task.module, s.world)
        record["ranks_identical_weights"] = same
        if not same:
            raise TrainingError(f"after epoch {state.epoch + 1} the {s.world.size} training processes hold different "
                                "weights; the run stopped (please report this with the run's config.yaml)")
    if s.world.main:
        _select(s, state, record)
    return distributed.broadcast(state, s.world)


def _select(s: Setup, state: TrainState, record: dict[str, Any]) -> None:
    t = s.config.train
    epoch = state.epoch
    if s.average is not None:
        s.average.swap()  # dev selection and the saved model use the averaged weights
    if "dev" in s.evals:
        dev = evaluate_task(s.task, s.evals["dev"])
        record["dev"] = {m: dev.overall[m].f1 for m in dev.overall}
        f1 = dev.overall["strict"].f1
        keep = state.best_dev_f1 is None or f1 > state.best_dev_f1
        if keep:
            state.best_dev_f1 = f1
    else:
        keep = True
        record["selection"] = SELECT_LAST
    if keep:
        state.best_epoch, state.bad_epochs = epoch + 1, 0
        write_folder_atomically(s.run_dir / "model", s.task.save)
    else:
        state.bad_epochs += 1
    if s.average is not None:
        s.average.swap()
    state.history.append(record)
    if "dev" in s.evals and t.patience is not None and state.bad_epochs >= t.patience:
        state.stopped = True
    per_epoch = state.train_seconds / (epoch + 1)
    if t.max_train_seconds is not None and state.train_seconds + per_epoch > t.max_train_seconds:
        state.stopped = True  # another epoch would overrun the time budget
    state.epoch, state.step_in_epoch, state.loss_sum, state.loss_n, state.losses = epoch + 1, 0, 0.0, 0, []
    state.tokens = state.tokens_squared = 0
    _checkpoint(s, state)
    write_text_atomic(s.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.history))
    log.info("epoch %d: %s", epoch + 1, record)


def final_test(s: Setup, state: TrainState) -> Report | None:
    """Fit the span-score temperature on dev (``train.calibrate``), then score the kept model on
    test, loaded back from the run folder exactly as users will load it."""
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.folder import write_calibration
    from bioner.models.loading import load_tagger

    if "test" not in s.evals and not ("dev" in s.evals and s.config.train.calibrate):
        return None

    t = s.config.train
    best = load_tagger(s.run_dir, trust_remote_code=s.config.model.trust_remote_code,
                       allow_pickle=s.config.model.allow_pickle)
    if t.calibrate and "dev" in s.evals and isinstance(best, EncoderTagger):
        dev = s.evals["dev"]
        fit = best.fit_temperature([x.tokens for x in dev], [x.tags or [] for x in dev])
        write_calibration(s.run_dir / "model", {**fit, "fitted_on": "dev", "n_sentences": len(dev)})
        log.info("span-score temperature %.2f (dev ECE %.4f -> %.4f)", fit["temperature"], fit["ece_at_1"], fit["ece"])
    if "test" not in s.evals:
        return None
    test = s.evals["test"]
    report = evaluate_tagger(best, test, bootstrap=t.test_bootstrap, seed=t.seed)
    report.extra["best_epoch"] = state.best_epoch
    report.extra["selection"] = SELECT_DEV if "dev" in s.evals else SELECT_LAST
    write_text_atomic(s.run_dir / "eval_test.json", json.dumps(report.to_dict(), indent=1))
    return report


# ---------------------------------------------------------------- the loop


def train(config: RunConfig, run_dir: Path, resume: bool = False, progress: bool | None = None) -> TrainResult:
    """Train one run; under torchrun (``WORLD_SIZE`` > 1) this process is one rank of several
    (see :mod:`bioner.recipes.distributed`) and only rank 0 writes ``run_dir``."""
    world = distributed.world_from_env()
    try:
        with RunLock(run_dir) if world.main else contextlib.nullcontext():
            s, state = setup(config, run_dir, resume, world)
            show = sys.stderr.isatty() if progress is None else progress
            with keep_freed_memory(s.device):  # no page faults for each step's 47 MB gradient
                while state.epoch < config.train.epochs and not state.stopped:
                    record = run_epoch(s, state, show)
                    state = select(s, state, record)
            test_report = final_test(s, state) if world.main else None
    finally:
        distributed.shutdown()
    return TrainResult(run_dir, state.best_epoch, state.best_dev_f1, len(state.history), state.train_seconds,
                       test_report, SELECT_DEV if "dev" in s.evals else SELECT_LAST)


def _plain_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist()
    return [order[k:k + batch_size] for k in range(0, n, batch_size)]
