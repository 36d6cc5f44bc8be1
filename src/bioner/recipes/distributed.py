"""Training on several processes or machines with plain ``torch.distributed``.

``bioner train --nproc N`` re-launches itself under ``torchrun`` (``torch.distributed.run``);
launching ``torchrun ... -m bioner train ...`` directly, multi-node included, works the same.
Each rank trains the same model on its share of the length-grouped batches; the loss goes
through :class:`~torch.nn.parallel.DistributedDataParallel`, which all-reduces (averages) the
gradients, so every rank applies the same update and the ranks end with identical weights.
Only rank 0 scores dev, writes the run folder and checkpoints; it broadcasts the training
state after each epoch so every rank makes the same decisions (stop, keep).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bioner.errors import TrainingError


@dataclass(frozen=True, slots=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


ALONE = World()  # one process


def world_from_env() -> World:
    """The world ``torchrun`` describes in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> None:
    """Join the process group: gloo on CPU, nccl on CUDA."""
    if not world.active or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=60))


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_batches(batches: list[list[int]], world: World) -> list[list[int]]:
    """This rank's batches: every ``size``-th one from its rank; the last round wraps around so
    all ranks take the same number of steps (a rank with one step fewer would hang the others)."""
    if not world.active or not batches:
        return batches
    steps = -(-len(batches) // world.size)
    return [batches[(k * world.size + world.rank) % len(batches)] for k in range(steps)]


class LossModule(nn.Module):
    """The task's loss as a module's ``forward``, so DDP sees the computation and syncs gradients."""

    def __init__(self, model: nn.Module, loss: Any) -> None:
        super().__init__()
        self.model = model
        self._loss = loss

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._loss(batch)


def wrap(model: nn.Module, loss: Any, world: World, device: torch.device) -> Any:
    """``batch → loss`` for the training step: through DDP when there are several ranks."""
    if not world.active:
        return loss
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(LossModule(model, loss), device_ids=[world.local_rank] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def mean_across(value: torch.Tensor, world: World) -> float:
    """The loss averaged over ranks (every rank gets the same figure, so all agree on a non-finite one)."""
    if not world.active:
        return float(value.item())
    buf = value.detach().float().reshape(1).clone()
    dist.all_reduce(buf)
    return float(buf.item()) / world.size


def any_across(flag: bool, world: World) -> bool:
    """True on every rank when it is true on any (so all ranks stop at the same step)."""
    if not world.active:
        return flag
    buf = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    return bool(buf.item() > 0)


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's object on every rank."""
    if not world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def weights_agree(model: nn.Module, world: World) -> bool:
    """Whether every rank holds bit-identical parameters (SHA-256 of all parameter bytes, compared
    on all ranks); DDP's averaged gradients should guarantee it, this proves it per epoch."""
    import hashlib

    if not world.active:
        return True
    digest = hashlib.sha256()
    for _, p in sorted(model.named_parameters()):
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    hashes: list[Any] = [None] * world.size
    dist.all_gather_object(hashes, digest.hexdigest())
    return len(set(hashes)) == 1


def launch(nproc: int, argv: list[str], threads: int | None) -> None:
    """Run ``bioner <argv>`` in ``nproc`` processes on this machine through torch's elastic launcher
    (what ``torchrun --standalone`` does); each process gets ``threads`` torch threads (default:
    this machine's cores / nproc).  A failed process stops them all and raises TrainingError."""
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 2:
        raise TrainingError(f"--nproc {nproc}: at least 2 processes (1 is a plain `bioner train`)")
    per_rank = threads or max(1, (os.cpu_count() or 1) // nproc)
    os.environ["OMP_NUM_THREADS"] = str(per_rank)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        elastic_launch(config, sys.executable)("-m", "bioner", *argv)
    except SignalException:  # Ctrl-C or a kill: the launcher has stopped the processes
        raise KeyboardInterrupt from None
    except ChildFailedError as exc:
        failed = ", ".join(f"rank {rank} (exit code {f.exitcode})" for rank, f in sorted(exc.failures.items()))
        raise TrainingError(f"training stopped: {failed} failed; its message is above. {nproc} processes were "
                            "launched; the run folder keeps what rank 0 wrote before that (--resume continues it)") from None


def strip_nproc(argv: list[str]) -> list[str]:
    """The command line without ``--nproc N`` / ``--nproc=N`` (the children must not launch again)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out
