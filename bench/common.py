"""What every benchmark script does first: find the shared corpora and check the run it measures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def use_shared_data() -> None:
    """``$BIONER_DATA_DIR`` defaults to ``../shared/datasets`` beside the checkout."""
    if "BIONER_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "datasets").is_dir():
        os.environ["BIONER_DATA_DIR"] = str(REPO.parent / "shared" / "datasets")


def have_run(run: Path) -> bool:
    """A trained run folder is there; otherwise say how to make one."""
    if (run / "model").is_dir():
        return True
    print(f"no trained model at {run}: run bench/encoder_accuracy.py first", file=sys.stderr)
    return False


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """The figure / value / bar table every benchmark prints."""
    print("| figure | value | bar |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
