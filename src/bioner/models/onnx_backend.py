"""Encoder export to ONNX (optionally int8 dynamic quantization) and ONNX Runtime inference.

Only the backbone (sub-words → logits) goes to ONNX; the CRF, if any, stays in torch, where its
Viterbi over a handful of labels costs nothing.  ``Tagger.load`` picks an exported file up.
"""

from __future__ import annotations

import logging
import os
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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).logits


def export_onnx(backbone: nn.Module, folder: Path, int8: bool = False, opset: int = 18) -> Path:
    """Write ``model.onnx`` (and ``model.int8.onnx`` with ``int8``) into a model folder."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelError("ONNX export needs the extras: pip install 'bioner[onnx]'") from exc
    wrapper = _Logits(backbone).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=4096)
    target = folder / ONNX_FILE
    tmp = folder / (ONNX_FILE + ".tmp")
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], opset_version=opset, dynamo=True, external_data=False,
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        )
    os.replace(tmp, target)
    if not int8:
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = folder / ONNX_INT8_FILE
    tmp8 = folder / (ONNX_INT8_FILE + ".tmp")
    quantize_dynamic(str(target), str(tmp8), weight_type=QuantType.QInt8)
    os.replace(tmp8, out)
    return out


class OnnxRunner:
    """Callable like the torch backbone's logits: (input_ids, attention_mask) → logits."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"input_ids": input_ids.numpy().astype(np.int64),
                                                  "attention_mask": attention_mask.numpy().astype(np.int64)})
        return torch.from_numpy(logits)


def find_onnx(folder: Path, prefer_int8: bool = True) -> Path | None:
    order = (ONNX_INT8_FILE, ONNX_FILE) if prefer_int8 else (ONNX_FILE, ONNX_INT8_FILE)
    for name in order:
        if (folder / name).is_file():
            return folder / name
    return None
