"""Encoder export to ONNX (optionally int8 dynamic quantization) and ONNX Runtime inference.

Only the backbone (sub-words → logits) goes to ONNX; the CRF, if any, stays in torch, where its
Viterbi over a handful of labels costs nothing.  ``load_tagger`` picks an exported file up.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bioner.errors import ModelError

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"


class _Logits(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_onnx(backbone: nn.Module, folder: Path, int8: bool = False, opset: int = 17,
                token_types: bool = False) -> Path:
    """Write ``model.onnx`` (and ``model.int8.onnx`` with ``int8``) into a model folder.

    The graph is traced with eager attention so ONNX Runtime's transformer optimizer can fuse
    it (embeddings + LayerNorm, attention, bias + GELU); int8 weights are
    quantized per output channel and the classifier stays fp32, which keeps the int8 tags within
    half a percent of the fp32 ones where per-tensor scales were not.  ``token_types``: the graph
    also reads ``token_type_ids`` (models trained with ``model.word_shape``).
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelError("ONNX export needs the extras: pip install 'bioner[onnx]'") from exc
    target = folder / ONNX_FILE
    tmp = folder / (ONNX_FILE + ".tmp")
    _trace(backbone, tmp, opset, token_types)
    _optimize(tmp, backbone)
    os.replace(tmp, target)
    if not int8:
        return target
    out = folder / ONNX_INT8_FILE
    tmp8 = folder / (ONNX_INT8_FILE + ".tmp")
    _quantize(target, tmp8)
    os.replace(tmp8, out)
    return out


def _trace(backbone: nn.Module, path: Path, opset: int, token_types: bool) -> None:
    config = backbone.config  # type: ignore[attr-defined]
    before = getattr(config, "_attn_implementation", None) or "sdpa"
    wrapper = _Logits(backbone).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    inputs: tuple[torch.Tensor, ...] = (ids, mask)
    input_names = ["input_ids", "attention_mask"]
    if token_types:
        inputs, input_names = (ids, mask, torch.zeros_like(ids)), input_names + ["token_type_ids"]
    names = {"input_names": input_names, "output_names": ["logits"]}
    try:
        backbone.set_attn_implementation("eager")  # type: ignore[operator]
        switched = before != "eager"
    except (AttributeError, ValueError):
        switched = False
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # the TorchScript tracer writes the attention pattern ORT's fusions know
                axes = {"batch": 0, "seq": 1}
                torch.onnx.export(wrapper, inputs, str(path), opset_version=opset, dynamo=False,
                                  dynamic_axes={n: {i: a for a, i in axes.items()}
                                                for n in (*input_names, "logits")}, **names)
            except Exception as exc:  # noqa: BLE001 - any tracer failure: the dynamo exporter is the fallback
                log.info("TorchScript export failed (%s); using the dynamo exporter", exc)
                batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=4096)
                torch.onnx.export(wrapper, inputs, str(path), opset_version=max(opset, 18), dynamo=True,
                                  external_data=False, dynamic_shapes={
                                      n: {0: batch, 1: seq} for n in input_names}, **names)
    finally:
        if switched:  # the live model keeps serving torch predictions with its own attention
            backbone.set_attn_implementation(before)  # type: ignore[operator]


def _optimize(path: Path, backbone: nn.Module) -> None:
    """Fuse transformer blocks with ONNX Runtime's optimizer where it knows the architecture."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import MODEL_TYPES, optimize_model

    config = backbone.config  # type: ignore[attr-defined]
    kind = getattr(config, "model_type", "")
    if kind not in MODEL_TYPES:
        return
    options = FusionOptions(kind)
    # residual + LayerNorm stay two ops: ORT's fused SkipLayerNormalization kernel took 28% of
    # the int8 time on BC5CDR test (2 cores), Add + LayerNormalization take 8%
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimize_model(str(path), model_type=kind, num_heads=getattr(config, "num_attention_heads", 0),
                               hidden_size=getattr(config, "hidden_size", 0), opt_level=1,
                               optimization_options=options)
    log.info("ONNX fusions: %s", {k: v for k, v in model.get_fused_operator_statistics().items() if v})
    model.save_model_to_file(str(path))


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source)).graph
    matmuls = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=matmuls[-1:],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


class OnnxRunner:
    """Callable like the torch backbone's logits: (input_ids, attention_mask) → logits."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=["SkipLayerNormFusion"])  # see _optimize
        except Exception as exc:  # noqa: BLE001 - ORT raises its own kinds for unreadable graphs
            raise ModelError(f"{path}: not a usable ONNX graph ({str(exc).splitlines()[0][:200]}); export it "
                             "again with `bioner export --onnx`, or load with --backend torch") from None
        self.input_names = {i.name for i in self.session.get_inputs()}

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"input_ids": input_ids.numpy().astype(np.int64),
                "attention_mask": attention_mask.numpy().astype(np.int64)}
        if "token_type_ids" in self.input_names:
            if token_type_ids is None:
                raise ModelError(f"{self.path} reads casing classes (token_type_ids) but none were given")
            feed["token_type_ids"] = token_type_ids.numpy().astype(np.int64)
        (logits,) = self.session.run(["logits"], feed)
        return torch.from_numpy(logits)


def find_onnx(folder: Path, prefer_int8: bool = True) -> Path | None:
    order = (ONNX_INT8_FILE, ONNX_FILE) if prefer_int8 else (ONNX_FILE, ONNX_INT8_FILE)
    for name in order:
        if (folder / name).is_file():
            return folder / name
    return None
