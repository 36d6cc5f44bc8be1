"""Training checkpoints that survive SIGKILL: safetensors + JSON, written to a temporary
folder and swapped in with renames, so a kill at any instant leaves the last complete one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bioner.errors import ModelError
from bioner.files import write_folder_atomically

CHECKPOINT = "checkpoint"
AVERAGED = "averaged.safetensors"  # the moving average of the weights (train.ema)


def find_checkpoint(run_dir: Path) -> Path | None:
    found = find_checkpoints(run_dir)
    return found[0] if found else None


def find_checkpoints(run_dir: Path) -> list[Path]:
    """The newest checkpoint first, then the previous one (kept while the newest is swapped in)."""
    return [run_dir / name for name in (CHECKPOINT, CHECKPOINT + ".old") if (run_dir / name / "state.json").is_file()]


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any],
                    averaged: dict[str, torch.Tensor] | None = None) -> None:
    def write(tmp: Path) -> None:
        save_file(trainable_state(model), str(tmp / "model.safetensors"))
        if averaged is not None:
            save_file({k: v.contiguous() for k, v in averaged.items()}, str(tmp / AVERAGED))
        opt = optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        for idx, slots in opt["state"].items():
            for key, value in slots.items():
                tensors[f"{idx}.{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).contiguous()
        tensors["__rng__"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        meta = {"param_groups": opt["param_groups"], "scheduler": scheduler.state_dict(), **state}
        (tmp / "state.json").write_text(json.dumps(meta, default=_jsonable), encoding="utf-8")

    write_folder_atomically(run_dir / CHECKPOINT, write)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what training changes (LoRA adapters, heads; everything for a full fine-tune), each
    storage once: frozen base weights of a 7B model need no copy in every checkpoint."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if param.requires_grad and param.data_ptr() not in seen:
            seen.add(param.data_ptr())
            out[name] = param.detach().contiguous()
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """Restore model, optimiser, schedule and RNG; a damaged file is a ModelError naming it."""
    current = folder / "state.json"
    try:
        meta = json.loads(current.read_text(encoding="utf-8"))
        current = folder / "model.safetensors"
        weights = load_file(str(current))
        missing = set(trainable_state(model)) - set(weights)
        if missing:
            raise ModelError(f"{current} lacks weights for {sorted(missing)[:3]}; it belongs to another model")
        model.load_state_dict(weights, strict=False)
        current = folder / "optimizer.safetensors"
        tensors = load_file(str(current))
        torch.set_rng_state(tensors.pop("__rng__"))
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            idx, slot = key.split(".", 1)
            state.setdefault(int(idx), {})[slot] = value
        current = folder / "state.json"
        optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
        scheduler.load_state_dict(meta.pop("scheduler"))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated JSON/safetensors raise many kinds
        raise ModelError(f"{current}: damaged checkpoint ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    return meta


def load_averaged(folder: Path) -> dict[str, torch.Tensor] | None:
    path = folder / AVERAGED
    return load_file(str(path)) if path.is_file() else None
