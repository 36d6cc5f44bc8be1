"""The model folder: the one place that writes and reads ``tagger.json`` and ``labels.json``,
and that decides whether a folder someone handed over is safe to load.

A folder is data, never instructions: nothing in it can switch on code execution.  Code
shipped in a folder (``auto_map``) runs only when the user passes ``trust_remote_code``
themselves, and pickled weights (``.bin``/``.pt``, which can run code when unpickled) load only
with ``allow_pickle``; safetensors is the silent path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bioner.corpus.labels import LabelSet
from bioner.errors import ModelError
from bioner.files import file_sha256, write_text_atomic

log = logging.getLogger(__name__)
TAGGER_FILE = "tagger.json"
LABELS_FILE = "labels.json"
CALIBRATION_FILE = "calibration.json"  # the span-score temperature fitted on dev
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
KINDS = ("encoder", "llm-cls", "llm-gen")


class TaggerMeta(BaseModel):
    """``tagger.json``: what a loader needs besides the weights.  Unknown keys are ignored (older
    folders carried ``trust_remote_code``, which is never honoured from a folder)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)
    kind: Literal["encoder", "llm-cls", "llm-gen"]
    subword_strategy: Literal["first", "all"] = "first"
    max_subwords: int = Field(256, ge=16)
    stride: int = Field(64, ge=0)
    context: int = Field(0, ge=0)
    word_shape: bool = False
    base_model: str | None = None
    bidirectional: bool = False
    constrained: bool = True
    generation_batch_size: int = Field(8, ge=1)
    # the run's precision policy (auto/fp32/bf16), resolved again on the machine that loads it;
    # folders written before it was recorded were scored in fp32
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    trained_precision: Literal["fp32", "bf16"] | None = None
    max_tokens_cpu: int = Field(1024, ge=16)
    max_tokens_gpu: int = Field(16384, ge=16)
    reference_pad_to: int = Field(512, ge=16)
    batch_sentences: int = Field(256, ge=1)


def model_folder(path: Path) -> Path:
    """A run folder (holding ``model/``) or a model folder itself."""
    if (path / "model" / TAGGER_FILE).is_file():
        return path / "model"
    if (path / TAGGER_FILE).is_file():
        return path
    if not path.exists():
        raise ModelError(f"model folder {path} does not exist")
    raise ModelError(f"{path} is not a bioner model: no {TAGGER_FILE} in it or in {path / 'model'}. "
                     "Give the run folder written by `bioner train`.")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} is missing: not a complete bioner model folder") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_meta(folder: Path) -> TaggerMeta:
    raw = _read_json(folder / TAGGER_FILE)
    if not isinstance(raw, dict):
        raise ModelError(f"{folder / TAGGER_FILE}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("trust_remote_code"):
        log.warning("%s asks for trust_remote_code; ignored (only your own command line or config can "
                    "allow code from a model folder)", folder / TAGGER_FILE)
    try:
        return TaggerMeta.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"{folder / TAGGER_FILE}: {problems}") from None


def read_labels(folder: Path) -> LabelSet:
    return LabelSet.from_saved(_read_json(folder / LABELS_FILE), str(folder / LABELS_FILE))


def write_tagger_files(folder: Path, labels: LabelSet | list[str], meta: TaggerMeta) -> None:
    """The one writer of ``labels.json`` and ``tagger.json`` (weights are the caller's)."""
    tags = labels.tags if isinstance(labels, LabelSet) else list(labels)
    LabelSet.from_saved(tags, "labels to save")  # never write a list a loader would refuse
    write_text_atomic(folder / LABELS_FILE, json.dumps(tags, indent=1))
    write_text_atomic(folder / TAGGER_FILE, meta.model_dump_json(indent=1))


def check_loadable(folder: Path, trust_remote_code: bool = False, allow_pickle: bool = False) -> None:
    """Refuse, before ``from_pretrained`` touches it, a local folder that would run code."""
    if not folder.is_dir():
        return  # a hub name: transformers itself refuses auto_map without trust_remote_code
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        raw = _read_json(path)
        if isinstance(raw, dict) and raw.get("auto_map") and not trust_remote_code:
            raise ModelError(
                f"{path} maps classes to code shipped in the folder (auto_map: "
                f"{', '.join(sorted(raw['auto_map']))}); bioner never runs such code by itself. "
                "Pass --trust-remote-code (or model.trust_remote_code=true) only if you trust its author.")
    safe = list(folder.glob("*.safetensors"))
    pickled = [p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file()]
    if pickled and not safe and not allow_pickle:
        raise ModelError(
            f"{folder} holds only pickled weights ({pickled[0].name}); unpickling can run code. Convert "
            "them to safetensors, or pass --allow-pickle (model.allow_pickle=true) if you trust the source.")


def pretrained_kwargs(trust_remote_code: bool, allow_pickle: bool) -> dict[str, Any]:
    """What every ``from_pretrained`` call gets: safetensors only unless pickles are allowed."""
    return {"trust_remote_code": trust_remote_code, "use_safetensors": None if allow_pickle else True}


def read_temperature(folder: Path) -> float:
    """The span-score temperature fitted for this model (1.0 when none was fitted)."""
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return 1.0
    raw = _read_json(path)
    value = raw.get("temperature") if isinstance(raw, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.05 <= value <= 100:
        raise ModelError(f"{path}: 'temperature' must be a number between 0.05 and 100, got {value!r}")
    return float(value)


def write_calibration(folder: Path, fit: dict[str, Any]) -> None:
    write_text_atomic(folder / CALIBRATION_FILE, json.dumps(fit, indent=1))


def model_fingerprint(model: Path) -> str:
    """Hash of a run's model files (weights, ONNX, json): whether two runs hold the same model
    (a resumed corpus tagging or a pseudo-label cache must use the one they started with)."""
    folder = model_folder(model)
    digest = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".json", ".onnx"):
            digest.update(f.name.encode() + file_sha256(f).encode())
    return digest.hexdigest()
