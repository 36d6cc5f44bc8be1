"""One typed, serializable configuration per run, saved as ``config.yaml`` beside the model.

Values are resolved in this order, later winning: the preset, a YAML file (``--config``),
the CLI flags, then ``key=value`` overrides with dotted keys (``train.lr=3e-4``).  Every
problem is reported at once, each with the dotted path of the bad key.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bioner.errors import ConfigError
from bioner.files import write_text_atomic


class _Section(BaseModel):
    # inf and nan pass every ``gt``/``ge`` bound in pydantic unless refused here
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    dataset: str | None = None
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    limit_train: int | None = Field(None, ge=1)
    limit_eval: int | None = Field(None, ge=1)


class LoraConfig(_Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = None  # default: q/k/v/o/gate/up/down projections
    lm_head: bool = False  # also adapt lm_head (llm-gen; the reference study does)


class ModelConfig(_Section):
    kind: Literal["encoder", "llm-cls", "llm-gen"] = "encoder"
    name: str = "minilm"
    crf: bool = False
    subword_strategy: Literal["first", "all"] = "first"
    max_subwords: int = Field(256, ge=16)
    stride: int = Field(64, ge=0)
    context: int = Field(0, ge=0)  # sub-words of the neighbouring sentences (file order) on each side
    word_shape: bool = False  # casing class per sub-word as its token type (encoders with token types)
    # run code shipped inside a model folder (auto_map); only ever from the user's own config
    trust_remote_code: bool = False
    # read pickled weights (.bin/.pt), which can run code when loaded; safetensors needs no flag
    allow_pickle: bool = False
    # parameters whose name contains one of these are the task head: trained with train.head_lr
    # and kept whole (not LoRA-adapted) in LLM taggers
    head_modules: list[str] = Field(default_factory=lambda: ["classifier", "score"], min_length=1)
    # LLM kinds
    lora: LoraConfig = LoraConfig()
    use_lora: bool = True
    quantize: Literal["4bit"] | None = None
    bidirectional: bool = False  # llm-cls: drop the causal mask
    constrained: bool = True  # llm-gen: force tokens, choose only tags
    loss_on_prompt: bool = False  # llm-gen: the reference study's loss over the whole text
    generation_batch_size: int = Field(8, ge=1)


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-4, gt=0)
    head_lr: float | None = Field(None, gt=0)
    batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 42
    patience: int | None = Field(3, ge=1)
    checkpoint_every_steps: int = Field(200, ge=1)
    group_by_length: bool = True
    max_train_seconds: float | None = Field(None, gt=0)
    threads: int | None = Field(None, ge=1)
    # auto: bf16 autocast where the hardware has native bf16 (GPUs with bf16, CPUs with AMX or
    # AVX512-BF16: 1.5x faster MiniLM steps on this project's machine), else fp32
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # decay of an exponential moving average of the weights; dev selection and the saved model
    # use the average (smooths the epoch-to-epoch noise of a high learning rate); None: off
    ema: float | None = Field(None, gt=0, lt=1)
    # bootstrap resamples for the final test report's 95% intervals (0: none)
    test_bootstrap: int = Field(1000, ge=0)
    # fit a temperature for span scores on dev after training (kept when it lowers dev ECE)
    calibrate: bool = True


class InferenceConfig(_Section):
    """How a trained tagger batches at inference; saved in ``tagger.json`` beside the weights."""

    # padded sub-words per batch: CPUs are fastest with batches that stay in cache (1,024 tags
    # BC5CDR test 30% faster than 8,192 on 2 cores); GPUs want large ones
    max_tokens_cpu: int = Field(1024, ge=16)
    max_tokens_gpu: int = Field(16384, ge=16)
    # the reference study's loop pads every sentence to this many sub-words (cost baseline)
    reference_pad_to: int = Field(512, ge=16)
    # sentences gathered across documents before a model call in tag_documents
    batch_sentences: int = Field(256, ge=1)


class DistillConfig(_Section):
    """``bioner distill``: teachers label unlabelled text; the student learns from it and gold."""

    teachers: list[str] = Field(min_length=1)  # run folders; several form an ensemble
    unlabeled: list[str] = Field(min_length=1)  # files: raw text, JSONL, PubTator, BioC, CoNLL (tags ignored)
    alpha: float = Field(0.5, ge=0)  # weight of the KL term on pseudo-labelled words
    temperature: float = Field(2.0, gt=0)  # softens teacher and student distributions in the KL term
    hard: bool = False  # the teacher's argmax tags only, no KL term
    limit_unlabeled: int | None = Field(None, ge=1)  # pseudo-label at most this many sentences
    chunk_sentences: int = Field(2000, ge=1)  # pseudo-labels are cached (and resumed) by chunk


class RunConfig(_Section):
    preset: str = "cpu"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    inference: InferenceConfig = InferenceConfig()
    distill: DistillConfig | None = None


PRESETS: dict[str, dict[str, Any]] = {
    # Tuned for the embedded MiniLM on 2 CPU cores: a larger learning rate than BERT-base
    # recipes (2e-4, the head 2e-3), first sub-word labels, windows of 256 sub-words; for
    # encoders also the best measured recipe (KIND_PRESETS).
    "cpu": {"train": {"lr": 2e-4, "head_lr": 2e-3}},
    # The reference study's recipe (for BERT-large-size encoders on a GPU).
    "paper": {
        "model": {"subword_strategy": "all", "max_subwords": 512, "stride": 128,
                  "lora": {"r": 128, "alpha": 256, "dropout": 0.05, "lm_head": True}},
        "train": {"lr": 2e-5, "batch_size": 8, "epochs": 20, "warmup_ratio": 0.1,
                  "weight_decay": 0.0, "patience": 3, "seed": 42},
    },
}
# What a preset adds for one tagger kind only.  cpu + encoder: CRF, word shapes and weight
# averaging, the best MiniLM recipe measured on BC5CDR (dev 0.85 within a few epochs; the plain
# head needed twice as long for less).  Word shapes need token-type embeddings, which decoders
# lack, and the LLM recipes were calibrated without these.
KIND_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {"encoder": {"model": {"crf": True, "word_shape": True}, "train": {"ema": 0.998}}},
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``a.b=value`` strings into a nested dict; values are read as YAML scalars."""
    out: dict[str, Any] = {}
    problems = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(f"override '{item}' is not key=value (e.g. train.lr=3e-4)")
            continue
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw else None
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def build_config(preset: str = "cpu", file: Path | None = None, flags: dict[str, Any] | None = None,
                 overrides: list[str] | None = None) -> RunConfig:
    """Preset (with its part for the run's tagger kind), then the file, flags and overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    user: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{file}: cannot read YAML config ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: a config must be a mapping of sections")
        loaded.pop("provenance", None)
        if "preset" in loaded and loaded["preset"] not in PRESETS:
            raise ConfigError(f"{file}: unknown preset '{loaded['preset']}' (known: {', '.join(PRESETS)})")
        preset = loaded.get("preset", preset)
        user = _merge(user, loaded)
    user = _merge(user, flags or {})
    user = _merge(user, parse_overrides(overrides or []))
    base = _merge({"preset": preset}, PRESETS[preset])
    kind = (user.get("model") or {}).get("kind") or (base.get("model") or {}).get("kind") or "encoder"
    base = _merge(base, KIND_PRESETS.get(preset, {}).get(kind, {}) if isinstance(kind, str) else {})
    return validate_config(_merge(base, user), str(file) if file else "config")


def validate_config(raw: dict[str, Any], where: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{where}: {len(exc.errors())} problem(s):"]
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            got = f" (got {err['input']!r})" if err["type"] != "extra_forbidden" and not isinstance(
                err.get("input"), dict) else ""
            lines.append(f"  {path}: {err['msg']}{got}")
        raise ConfigError("\n".join(lines)) from None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("bioner", "torch", "transformers", "tokenizers", "safetensors", "peft", "accelerate", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def save_config(config: RunConfig, path: Path, provenance: dict[str, Any]) -> None:
    payload = config.model_dump(mode="json")
    payload["provenance"] = {**provenance, "packages": package_versions(),
                             "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text_atomic(path, yaml.safe_dump(payload, sort_keys=False))


def load_config(path: Path) -> RunConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read run config ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a run config must be a mapping of sections")
    raw.pop("provenance", None)
    return validate_config(raw, str(path))
