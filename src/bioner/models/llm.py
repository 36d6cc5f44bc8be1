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
from torch.utils.checkpoint import checkpoint

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
    """Drop the causal mask (LS-LLaMA / LLM2Vec-style) so each token sees its right context.

    Models that build their masks from the config get the config's switch (Gemma 3's
    ``use_bidirectional_attention``, whose sliding-window layers then look both ways); the others
    read the attention modules' ``is_causal``."""
    config = getattr(model, "config", None)
    for module in model.modules():
        sub = getattr(module, "config", None)
        if sub is not None and hasattr(sub, "use_bidirectional_attention"):
            sub.use_bidirectional_attention = True
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


HEAD_FILE = "head.safetensors"


class DecoderTokenClassifier(nn.Module):
    """A decoder backbone (``AutoModel``) with a linear head over its hidden states, for decoders
    that transformers gives no ``*ForTokenClassification`` class (Gemma 3 and other new ones).
    LoRA adapts the backbone; the head is trained fully; ``forward`` returns ``.logits`` like the
    library's own token classifiers, so the tagger, the CRF and ONNX export treat it the same."""

    def __init__(self, backbone: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.model = backbone
        self.config = backbone.config  # type: ignore[attr-defined]
        self.score = nn.Linear(self.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import TokenClassifierOutput

        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))


def has_token_classification_class(name: str, trust_remote_code: bool = False) -> bool:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
    )

    config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    return config.model_type in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES


def load_decoder_classifier(folder: Path, labels: list[str], trust_remote_code: bool = False,
                            allow_pickle: bool = False) -> DecoderTokenClassifier:
    from safetensors.torch import load_file
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(folder, **pretrained_kwargs(trust_remote_code, allow_pickle))
    model = DecoderTokenClassifier(backbone, len(labels))
    model.score.load_state_dict(load_file(folder / HEAD_FILE))
    return model


def save_llm(backbone: nn.Module, folder: Path) -> None:
    """Adapters (safetensors) in ``adapter/`` plus merged full weights for plain loading; a
    :class:`DecoderTokenClassifier` keeps its head in ``head.safetensors`` beside the backbone."""
    if isinstance(backbone, DecoderTokenClassifier):
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous() for k, v in backbone.score.state_dict().items()}, folder / HEAD_FILE)
        backbone = backbone.model
    if hasattr(backbone, "peft_config"):
        backbone.save_pretrained(folder / ADAPTER_DIR, safe_serialization=True)  # type: ignore[attr-defined]
        backbone = merged_copy(backbone)
    backbone.save_pretrained(folder, safe_serialization=True)  # type: ignore[operator]


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its LoRA adapters merged in, as the run folder holds it (a plain
    copy where it has none); the trained model keeps its adapters."""
    if hasattr(model, "peft_config"):
        return copy.deepcopy(model).merge_and_unload()  # type: ignore[operator]
    return copy.deepcopy(model)


def count_parameters(model: nn.Module) -> dict[str, int]:
    params = list(model.parameters())
    return {"total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad)}


def build_llm_cls(name: str, labels: list[str], m: Any) -> nn.Module:
    """A decoder with a token-classification head; LoRA on the backbone, the head fully trained."""
    from transformers import AutoModelForTokenClassification

    check_loadable(Path(name), m.trust_remote_code, m.allow_pickle)
    id2label = dict(enumerate(labels))
    if not has_token_classification_class(name, m.trust_remote_code):
        return _build_decoder_classifier(name, labels, m)
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


def _build_decoder_classifier(name: str, labels: list[str], m: Any) -> nn.Module:
    from transformers import AutoModel

    try:
        backbone = AutoModel.from_pretrained(name, quantization_config=quantization_config(m.quantize),
                                             **pretrained_kwargs(m.trust_remote_code, m.allow_pickle))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load '{name}' as a decoder backbone ({exc})") from exc
    id2label = dict(enumerate(labels))
    backbone.config.id2label, backbone.config.label2id = id2label, {v: k for k, v in id2label.items()}
    if m.bidirectional:
        make_bidirectional(backbone)
    if m.use_lora:
        backbone = apply_lora(backbone, m.lora, "FEATURE_EXTRACTION")
    return DecoderTokenClassifier(backbone, len(labels))


LOSS_CHUNK_LOGITS = 2**25  # logits per chunk of the generative loss (128 positions of Gemma 3's 262k rows)


def causal_parts(model: nn.Module) -> tuple[nn.Module, nn.Module, float | None]:
    """(decoder stack, output layer, final logit soft-cap) of a causal LM, through a peft wrapper
    (LoRA layers are injected in place, so calling the parts applies the adapters)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # type: ignore[operator]
    return base.get_decoder(), base.get_output_embeddings(), getattr(base.config, "final_logit_softcapping", None)


def output_logits(head: nn.Module, hidden: torch.Tensor, cap: float | None, rows: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Logits from hidden states, over all vocabulary rows or only ``rows`` (token ids)."""
    if rows is None:
        logits = head(hidden)
    else:
        weight = head.weight
        logits = hidden @ weight[rows].T
        bias = getattr(head, "bias", None)
        if bias is not None:
            logits = logits + bias[rows]
    logits = logits.float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def response_loss(model: nn.Module, batch: dict[str, torch.Tensor], ignore: int = -100) -> torch.Tensor:
    """Next-token cross-entropy where a label is set, with the output layer applied at those
    positions only: the prompt is most of each sequence, and Gemma 3's output layer has 262k rows,
    so logits for every prompt token would cost most of the step's time and memory.  Even so,
    8 long responses hold thousands of labelled positions, whose logits (with the soft-cap and
    log-softmax kept for backward) took 24 GB and an OOM kill on BC5CDR: the positions go through
    the output layer in chunks of ~32M logits, each recomputed in backward instead of kept."""
    decoder, head, cap = causal_parts(model)
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != ignore
    hidden, targets = hidden[:, :-1][keep], labels[keep]
    vocab = head.weight.shape[0]
    chunk = max(1, LOSS_CHUNK_LOGITS // vocab)
    if len(targets) <= chunk:
        return nn.functional.cross_entropy(output_logits(head, hidden, cap), targets)

    def chunk_loss(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output_logits(head, h, cap), y, reduction="sum")

    total = sum(checkpoint(chunk_loss, hidden[i:i + chunk], targets[i:i + chunk], use_reentrant=False)
                for i in range(0, len(targets), chunk))
    return total / len(targets)  # type: ignore[operator]


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
