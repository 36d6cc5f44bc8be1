"""Load a trained tagger: the run folder's ``kind`` picks the class, one function for all kinds.

``load_tagger("runs/x").predict([["Aspirin", "causes", "ulcers"]])``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bioner.config import InferenceConfig
from bioner.errors import ModelError
from bioner.models.base import Tagger
from bioner.models.folder import (
    TaggerMeta,
    model_folder,
    read_labels,
    read_meta,
    read_temperature,
)
from bioner.models.runtime import cast_linear_weights, pick_device, resolve_precision, set_threads

log = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnx", "onnx-fp32")


def inference_config(meta: TaggerMeta) -> InferenceConfig:
    return InferenceConfig(max_tokens_cpu=meta.max_tokens_cpu, max_tokens_gpu=meta.max_tokens_gpu,
                           reference_pad_to=meta.reference_pad_to, batch_sentences=meta.batch_sentences)


def load_tagger(path: str | Path, threads: int | None = None, backend: str = "auto", device: str = "auto",
                precision: str | None = None, trust_remote_code: bool = False,
                allow_pickle: bool = False) -> Tagger:
    """Load a trained tagger.

    ``backend``: ``torch``; ``onnx`` (the int8 export if there is one, else fp32); ``onnx-fp32``;
    ``auto`` (an ONNX export when the folder has one and onnxruntime is installed, else torch).
    ``precision``: ``auto``/``fp32``/``bf16``; None uses the run's own policy (tagger.json).
    ``trust_remote_code`` and ``allow_pickle`` come from the user only, never from the folder.
    """
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")
    folder = model_folder(Path(path))
    meta = read_meta(folder)
    labels = read_labels(folder)
    set_threads(threads)
    target = pick_device(device)
    run_precision = resolve_precision(precision or meta.precision, target)
    if meta.kind == "llm-gen":
        from bioner.models.generative import load_generative

        gen = load_generative(folder, meta, labels.tags, trust_remote_code, allow_pickle)
        gen.model.to(target)
        gen.precision = run_precision
        if run_precision == "bf16":
            cast_linear_weights(gen.model)
        return gen
    from bioner.models.encoder import load_encoder
    from bioner.models.encoder_tagger import EncoderTagger

    model, tokenizer = load_encoder(folder, labels, trust_remote_code, allow_pickle)
    if meta.kind == "llm-cls":
        from bioner.models.llm import make_bidirectional, prepare_llm_tokenizer

        prepare_llm_tokenizer(tokenizer)
        if meta.bidirectional:
            make_bidirectional(model.backbone)
    runner = _onnx_runner(folder, path, backend, threads)
    if runner is None:
        model = model.to(target)
    tagger = EncoderTagger(model, tokenizer, meta.subword_strategy, meta.max_subwords, meta.stride,
                           runner=runner, context=meta.context, shapes=meta.word_shape,
                           precision=run_precision if runner is None else "fp32",
                           inference=inference_config(meta))
    tagger.kind = meta.kind
    tagger.temperature = read_temperature(folder)
    return tagger


def _onnx_runner(folder: Path, path: str | Path, backend: str, threads: int | None) -> object | None:
    if backend == "torch":
        return None
    from bioner.models.onnx_backend import OnnxRunner, find_onnx

    onnx_path = find_onnx(folder, prefer_int8=backend != "onnx-fp32")
    if onnx_path is None:
        if backend != "auto":
            raise ModelError(f"{folder} has no ONNX export; run `bioner export --model {path} --onnx`")
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        if backend != "auto":
            raise ModelError(f"{onnx_path.name} needs onnxruntime: pip install 'bioner[onnx]'") from None
        log.warning("%s has an ONNX export but onnxruntime is not installed; using torch "
                    "(pip install 'bioner[onnx]' for the faster path)", folder)
        return None
    return OnnxRunner(onnx_path, threads)
