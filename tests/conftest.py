"""Shared fixtures: where the real corpora are, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers share the two cores: one thread each, in this process and in every `bioner`
    # subprocess a test starts (oversubscribed PyTorch threads slow everything several-fold)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from tests.helpers import real_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("real corpora not found: set BIONER_DATA_DIR or place shared/datasets beside the repo")
    return found
