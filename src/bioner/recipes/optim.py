"""Optimiser, learning-rate schedule and weight averaging: the small parts the loop composes."""

from __future__ import annotations

import torch

from bioner.config import RunConfig


def make_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW with three groups: decayed weights, undecayed biases/norms, and the task head (CRF
    and the modules named in ``model.head_modules``) at ``train.head_lr``."""
    t = config.train
    heads = tuple(f".{name}." for name in config.model.head_modules)
    decay, no_decay, head = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("crf.") or any(h in name for h in heads):
            head.append(param)
        elif param.ndim < 2:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "weight_decay": t.weight_decay, "lr": t.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": t.lr},
        {"params": head, "weight_decay": 0.0, "lr": t.head_lr or t.lr},
    ]
    groups = [g for g in groups if g["params"]]
    try:  # the fused kernel is ~4x faster than the per-tensor loop (a fifth of a CPU step for MiniLM)
        return torch.optim.AdamW(groups, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return torch.optim.AdamW(groups)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class WeightAverage:
    """Exponential moving average of the trainable weights (Polyak averaging).  Its decay
    ramps up as ``(1 + n) / (10 + n)`` so the early average is not stuck on the pretrained weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.shadow = {n: p.detach().clone() for n, p in self.named.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        weight = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        names = list(self.named)  # one foreach call, not a lerp per tensor (a CPU step's dispatch)
        torch._foreach_lerp_([self.shadow[n] for n in names], [self.named[n].detach() for n in names], weight)

    def state(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, "__updates__": torch.tensor(self.updates)}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.updates = int(tensors.pop("__updates__"))
        for name, value in tensors.items():
            self.shadow[name].copy_(value)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange live and averaged weights (call twice to undo)."""
        for name, param in self.named.items():
            live = param.detach().clone()
            param.copy_(self.shadow[name])
            self.shadow[name] = live
