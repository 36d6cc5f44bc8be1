"""The experiment spec (YAML), validated before anything runs; every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bioner.config import PRESETS
from bioner.errors import ConfigError


class TaggerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
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
        for i, t in enumerate(spec.taggers):
            if names.count(t.name) > 1:
                problems.append(f"  taggers.{i}.name: '{t.name}' is used twice")
            if t.preset not in PRESETS:
                problems.append(f"  taggers.{i}.preset: unknown preset '{t.preset}' (known: {', '.join(PRESETS)})")
            for j, o in enumerate(t.overrides):
                if "=" not in o:
                    problems.append(f"  taggers.{i}.overrides.{j}: '{o}' is not key=value")
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(problems))
    assert spec is not None
    return spec


def out_dir(spec: ExperimentSpec, spec_path: Path) -> Path:
    out = Path(spec.out)
    return out if out.is_absolute() else spec_path.parent / out
