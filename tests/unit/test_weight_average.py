"""The moving average of the weights (train.ema)."""

from __future__ import annotations

import torch

from bioner.recipes.optim import WeightAverage


def test_average_follows_the_weights_and_swaps_back() -> None:
    model = torch.nn.Linear(3, 2)
    frozen = torch.nn.Linear(1, 1)
    frozen.requires_grad_(False)
    model.add_module("frozen", frozen)
    start = model.weight.detach().clone()
    average = WeightAverage(model, decay=0.9)
    assert set(average.shadow) == {"weight", "bias"}  # frozen weights are not averaged
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update()  # first update: decay ramps from (1 + 1) / (10 + 1)
    w = 1 - 2 / 11
    assert torch.allclose(average.shadow["weight"], start + w)
    for _ in range(200):
        average.update()
    assert torch.allclose(average.shadow["weight"], start + 1.0, atol=1e-6)  # converges to a fixed point
    live = model.weight.detach().clone()
    with torch.no_grad():
        average.shadow["weight"].sub_(0.5)
    averaged = average.shadow["weight"].clone()
    average.swap()
    assert torch.equal(model.weight.detach(), averaged)
    average.swap()
    assert torch.equal(model.weight.detach(), live)
    restored = WeightAverage(model, decay=0.9)
    restored.load(average.state())
    assert restored.updates == 201 and torch.equal(restored.shadow["weight"], averaged)
