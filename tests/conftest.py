"""Shared fixtures: where the real corpora are, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path | None:
    """``$BIONER_DATA_DIR`` if set, else ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("BIONER_DATA_DIR")
    candidate = Path(env) if env else REPO.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("real corpora not found: set BIONER_DATA_DIR or place shared/datasets beside the repo")
    return found


def dataset_split(data_dir: Path, name: str, split: str) -> Path:
    path = data_dir / name / f"{split}.txt"
    if not path.is_file():
        pytest.skip(f"{path} is missing from the data dir")
    return path
