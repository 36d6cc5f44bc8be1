"""``bioner export``: write an ONNX (and int8) copy of an encoder for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.errors import BionerError


def export_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write a dynamically int8-quantized copy.")] = False,
) -> None:
    """Export the model; `Tagger.load` then uses the ONNX copy (int8 when present)."""
    from bioner.models.onnx_backend import export_onnx
    from bioner.models.tagger import EncoderTagger, load_tagger, model_folder

    if not onnx:
        raise BionerError("say what to export: --onnx [--int8]")
    tagger = load_tagger(model, backend="torch")
    assert isinstance(tagger, EncoderTagger)
    path = export_onnx(tagger.model.backbone, model_folder(model), int8=int8, token_types=tagger.shapes)
    typer.echo(f"wrote {path}")
