"""The experiment spec (YAML), validated before anything runs; every problem at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bioner.config import PRESETS, build_config
from bioner.errors import ConfigError

_FOLDER_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$")


def dataset_folder_name(dataset: str) -> str:
    """The folder a dataset's cells go in: the last part of its name or path."""
    return Path(dataset).name


class TaggerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # a folder name under the spec's out: no separators, no leading dot ('.', '..', hidden)
    name: str = Field(pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$", max_length=100)
    kind: Literal["encoder", "llm-cls", "llm-gen"] = "encoder"
    model: str = "minilm"
    preset: str = "cpu"
    overrides: list[str] = []


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    out: str
    datasets: list[str] = Field(min_length=1)
    taggers: list[TaggerSpec] = Field(min_length=1)
    seeds: list[int] = [42]
    limit_train: int | None = Field(None, ge=1)
    limit_eval: int | None = Field(None, ge=1)
    cost_sentences: int = Field(200, ge=1)
    cost_repeats: int = Field(3, ge=1)  # timed repeats of the cost meter (median reported)
    report_resamples: int = Field(2000, ge=100)  # paired test in the report


def load_spec(path: Path) -> ExperimentSpec:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the spec ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a spec is a mapping (name, out, datasets, taggers, seeds)")
    problems: list[str] = []
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        spec = None
    if spec is not None:
        names = [t.name for t in spec.taggers]
        folders = [dataset_folder_name(d) for d in spec.datasets]
        for i, (dataset, folder) in enumerate(zip(spec.datasets, folders)):
            if not _FOLDER_NAME.match(folder):
                problems.append(f"  datasets.{i}: '{dataset}' ends in '{folder}', which cannot name a folder "
                                "under out (letters, digits, '_', '+', '-', '.' not first)")
            elif folders.index(folder) != i:
                problems.append(f"  datasets.{i}: '{dataset}' and '{spec.datasets[folders.index(folder)]}' would "
                                f"share the folder '{folder}'; give the folders different names")
        for i, t in enumerate(spec.taggers):
            if names.count(t.name) > 1 and names.index(t.name) != i:
                problems.append(f"  taggers.{i}.name: '{t.name}' is used twice")
            if t.preset not in PRESETS:
                problems.append(f"  taggers.{i}.preset: unknown preset '{t.preset}' (known: {', '.join(PRESETS)})")
                continue
            try:  # the tagger's whole run config, now rather than when its cell runs hours later
                build_config(t.preset, flags={"model": {"kind": t.kind, "name": t.model}}, overrides=list(t.overrides))
            except ConfigError as exc:
                detail = str(exc).replace("\n", "\n    ")
                problems.append(f"  taggers.{i} ({t.name}): {detail}")
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(problems))
    assert spec is not None
    return spec


def out_dir(spec: ExperimentSpec, spec_path: Path) -> Path:
    out = Path(spec.out)
    return out if out.is_absolute() else spec_path.parent / out
