"""``bioner predict``: tag a CoNLL file (gold column ignored) with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.corpus.conll import load_conll, write_conll
from bioner.errors import BionerError


def predict_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    input: Annotated[Path | None, typer.Option(help="CoNLL file: tokens in the first column, tags (if any) ignored.")] = None,
    output: Annotated[Path | None, typer.Option(help="Where to write token<TAB>tag lines (default: stdout).")] = None,
    text: Annotated[str | None, typer.Option(help="A whitespace-tokenized sentence to tag.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Write predicted tags beside the tokens."""
    from bioner.models.tagger import load_tagger

    if (input is None) == (text is None):
        raise BionerError("give exactly one of --input FILE.conll or --text 'a sentence'")
    tagger = load_tagger(model, threads)
    if text is not None:
        tokens = text.split()
        for token, tag in zip(tokens, tagger.predict([tokens])[0]):
            typer.echo(f"{token}\t{tag}")
        return
    assert input is not None
    sentences = load_conll(input)
    predicted = tagger.predict_sentences(sentences)
    if output is None:
        write_conll(predicted, typer.get_text_stream("stdout"))
    else:
        n = write_conll(predicted, output)
        typer.echo(f"wrote {n} sentences to {output}", err=True)
