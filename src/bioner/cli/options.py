"""Options shared by every command that loads a trained model, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer


def at_least(minimum: int) -> Callable[[int | None], int | None]:
    """A callback that refuses numbers below ``minimum``, naming the value given (click's own
    range check names only the option)."""
    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise typer.BadParameter(f"{value} is below the minimum {minimum}")
        return value
    return check


Threads = Annotated[int | None, typer.Option(callback=at_least(1), help="CPU threads (at least 1).")]
Backend = Annotated[str, typer.Option(help="auto, torch, onnx or onnx-fp32.")]
Precision = Annotated[str | None, typer.Option(
    help="auto (bf16 where the hardware has bf16 units), fp32 or bf16; default: the run's own setting.")]
TrustRemoteCode = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow code shipped in the model folder (auto_map) to run. Only for folders you trust.")]
AllowPickle = Annotated[bool, typer.Option(
    "--allow-pickle", help="Allow pickled weights (.bin/.pt), which can run code when loaded.")]
