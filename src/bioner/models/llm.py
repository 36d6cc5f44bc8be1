"""Decoder LLMs as taggers: LoRA/QLoRA setup, bidirectional attention, adapters and merged export.

Both LLM kinds load through the usual ``from_pretrained`` path, so a local folder (a tiny test
model, or Mistral-7B copied to disk) and a hub name behave the same.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bioner.errors import ModelError
from bioner.models.folder import check_loadable, pretrained_kwargs

log = logging.getLogger(__name__)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTER_DIR = "adapter"


def prepare_llm_tokenizer(tok: Any) -> Any:
    """Decoders often ship without a pad token: reuse EOS (masked out anyway)."""
    if tok.pad_token_id is None:
        if tok.eos_token is None:
            raise ModelError("the tokenizer has neither a pad nor an EOS token; add one before training")
        tok.pad_token = tok.eos_token
    return tok


def quantization_config(quantize: str | None) -> Any:
    if quantize is None:
        return None
    if quantize != "4bit":
        raise ModelError(f"unknown quantization '{quantize}' (only 4bit)")
    if not torch.cuda.is_available():
        raise ModelError("4-bit QLoRA needs a CUDA GPU (bitsandbytes); on CPU train without "
                         "model.quantize or use a smaller model")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ModelError("4-bit QLoRA needs bitsandbytes: pip install bitsandbytes") from exc
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def make_bidirectional(model: nn.Module) -> None:
    """Drop the causal mask (LS-LLaMA / LLM2Vec-style) so each token sees its right context."""
    config = getattr(model, "config", None)
    if config is not None:
        config.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False
        sub = getattr(module, "config", None)
        if sub is not None and sub is not config:
            sub.is_causal = False


def apply_lora(model: nn.Module, lora: Any, task: str, extra_modules: list[str] | None = None,
               save_modules: list[str] | None = None) -> nn.Module:
    from peft import (
        LoraConfig,
        TaskType,
        get_peft_model,
        prepare_model_for_kbit_training,
    )

    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in (lora.target_modules or LORA_TARGETS) + (extra_modules or []) if t in present]
    if not targets:
        raise ModelError(f"none of the LoRA target modules {lora.target_modules or LORA_TARGETS} exist in this model")
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                        modules_to_save=save_modules, task_type=getattr(TaskType, task))
    return get_peft_model(model, config)


def save_llm(backbone: nn.Module, folder: Path) -> None:
    """Adapters (safetensors) in ``adapter/`` plus merged full weights for plain loading."""
    if hasattr(backbone, "peft_config"):
        backbone.save_pretrained(folder / ADAPTER_DIR, safe_serialization=True)  # type: ignore[attr-defined]
        merged = copy.deepcopy(backbone).merge_and_unload()  # type: ignore[operator]
    else:
        merged = backbone
    merged.save_pretrained(folder, safe_serialization=True)  # type: ignore[attr-defined]


def count_parameters(model: nn.Module) -> dict[str, int]:
    params = list(model.parameters())
    return {"total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad)}


def build_llm_cls(name: str, labels: list[str], m: Any) -> nn.Module:
    """A decoder with a token-classification head; LoRA on the backbone, the head fully trained."""
    from transformers import AutoModelForTokenClassification

    check_loadable(Path(name), m.trust_remote_code, m.allow_pickle)
    id2label = dict(enumerate(labels))
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            name, num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()},
            quantization_config=quantization_config(m.quantize),
            **pretrained_kwargs(m.trust_remote_code, m.allow_pickle),
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load '{name}' with a token-classification head ({exc})") from exc
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    if m.bidirectional:
        make_bidirectional(model)
    if not m.use_lora:
        return model
    heads = [n for n in m.head_modules if any(k.endswith(n) for k, _ in model.named_modules())]
    return apply_lora(model, m.lora, "TOKEN_CLS", save_modules=heads)


def build_llm_gen(name: str, m: Any) -> nn.Module:
    from transformers import AutoModelForCausalLM

    check_loadable(Path(name), m.trust_remote_code, m.allow_pickle)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, quantization_config=quantization_config(m.quantize),
            **pretrained_kwargs(m.trust_remote_code, m.allow_pickle),
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load '{name}' as a causal LM ({exc})") from exc
    if not m.use_lora:
        return model
    return apply_lora(model, m.lora, "CAUSAL_LM", extra_modules=["lm_head"] if m.lora.lm_head else None)
