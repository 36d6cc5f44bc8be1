"""Text → sentences/tokens → BIO: the corpus types, readers, writers and the one BIO decoder."""

from bioner.corpus.bio import (
    BioRepairs,
    bilou_to_iob,
    iob_to_bilou,
    iob_to_iobes,
    iobes_to_iob,
    repair_bio,
    spans_to_tags,
    tags_to_spans,
)
from bioner.corpus.conll import load_conll, read_conll, write_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.corpus.types import Sentence, Span

__all__ = [
    "BioRepairs", "Sentence", "Span", "bilou_to_iob", "iob_to_bilou", "iob_to_iobes",
    "iobes_to_iob", "load_conll", "read_conll", "repair_bio", "resolve_dataset",
    "spans_to_tags", "tags_to_spans", "write_conll",
]
