"""How the CLI prints: JSON for machines, Markdown for people."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from bioner.files import write_text_atomic


class Format(str, Enum):
    json = "json"
    md = "md"


def emit(payload: Any, markdown: str, fmt: Format, output: Path | None = None) -> None:
    text = json.dumps(payload, indent=2, ensure_ascii=False) if fmt is Format.json else markdown
    if output is not None:
        write_text_atomic(output, text + "\n")
    else:
        typer.echo(text)
