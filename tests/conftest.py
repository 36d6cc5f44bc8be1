"""Shared fixtures: where the real corpora are, and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import real_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("real corpora not found: set BIONER_DATA_DIR or place shared/datasets beside the repo")
    return found
