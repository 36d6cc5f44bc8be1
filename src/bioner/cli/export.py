"""``bioner export``: write an ONNX (and int8) copy of an encoder for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import AllowPickle, TrustRemoteCode
from bioner.errors import BionerError


def export_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write a dynamically int8-quantized copy.")] = False,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Export the model; `load_tagger` then uses the ONNX copy (int8 when present)."""
    from bioner.models import load_tagger
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.folder import model_folder
    from bioner.models.onnx_backend import export_onnx

    if not onnx:
        raise BionerError("say what to export: --onnx [--int8]")
    tagger = load_tagger(model, backend="torch", precision="fp32", trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle)
    if not isinstance(tagger, EncoderTagger):
        raise BionerError(f"ONNX export covers encoder and llm-cls runs; {model} is a {tagger.kind} run "
                          "(generation loops stay in torch)")
    path = export_onnx(tagger.model.backbone, model_folder(model), int8=int8, token_types=tagger.shapes)
    typer.echo(f"wrote {path}")
