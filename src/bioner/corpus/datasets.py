"""Find a dataset's split files from a name, a folder or explicit paths.

``--dataset BC5CDR`` looks in ``$BIONER_DATA_DIR/BC5CDR/{train,dev,test}.txt`` (default data
dir ``~/.cache/bioner/datasets``); a folder path works the same way; ``sample`` is the small
corpus bundled with bioner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bioner.errors import DatasetNotFoundError

SPLITS = ("train", "dev", "test")
DATA_DIR_ENV = "BIONER_DATA_DIR"

# name -> (entity types, where a copy can be had)
KNOWN_DATASETS: dict[str, str] = {
    "BC5CDR": "public (BioCreative V CDR); Chemical, Disease",
    "JNLPBA": "public (JNLPBA 2004); protein, DNA, RNA, cell_line, cell_type",
    "BioRED": "public (BioRED); six types",
    "ChemProt": "public (BioCreative VI ChemProt); CHEMICAL, GENE",
    "Reddit-Impacts": "PRIVATE: not publicly released; obtain it from the SMM4H 2024 Task 4 organisers "
                      "and place train.txt/dev.txt/test.txt in the data dir yourself",
    "Reddit-Impacts2": "public stand-in for Reddit-Impacts (SMM4H-HeaRD 2026 Task 7)",
    "NCBI-disease": "public; Disease",
    "BC2GM": "public; GENE",
    "LINNAEUS": "public; Species",
    "AnatEM": "public; Anatomy",
    "S800": "public; Species",
}


def data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "bioner" / "datasets"


def sample_dir() -> Path:
    """The bundled sample corpus (written for bioner, not taken from any dataset)."""
    return Path(str(resources.files("bioner") / "data" / "sample"))


@dataclass(slots=True)
class DatasetFiles:
    name: str
    splits: dict[str, Path] = field(default_factory=dict)

    def path(self, split: str) -> Path:
        if split not in self.splits:
            raise DatasetNotFoundError(
                f"dataset {self.name} has no '{split}' split (has: {', '.join(self.splits) or 'none'})"
            )
        return self.splits[split]


def _canonical(name: str) -> str | None:
    for known in KNOWN_DATASETS:
        if known.lower() == name.lower():
            return known
    return None


def resolve_dataset(name_or_path: str | Path, root: Path | None = None) -> DatasetFiles:
    """Resolve a dataset name or folder to its existing split files."""
    text = str(name_or_path)
    if text.lower() == "sample":
        folder, name = sample_dir(), "sample"
    elif Path(text).is_dir():
        folder, name = Path(text), Path(text).name
    else:
        base = root or data_dir()
        canonical = _canonical(text)
        name = canonical or text
        folder = base / name
        if not folder.is_dir():
            hint = (KNOWN_DATASETS[canonical] if canonical
                    else f"unknown name; known: {', '.join(KNOWN_DATASETS)}")
            raise DatasetNotFoundError(
                f"dataset '{text}' not found: no folder {folder} ({hint}). Set ${DATA_DIR_ENV} "
                "to the folder that holds NAME/{train,dev,test}.txt, or pass a folder path or "
                "--train/--dev/--test files."
            )
    splits = {s: folder / f"{s}.txt" for s in SPLITS if (folder / f"{s}.txt").is_file()}
    if not splits:
        raise DatasetNotFoundError(f"{folder} holds none of train.txt, dev.txt, test.txt")
    return DatasetFiles(name, splits)
