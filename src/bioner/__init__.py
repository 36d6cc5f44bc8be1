"""bioner: biomedical NER with encoders and LLMs under one BIO scheme and one evaluator."""

from bioner.corpus import (
    Sentence,
    Span,
    read_conll,
    spans_to_tags,
    tags_to_spans,
    write_conll,
)
from bioner.errors import BionerError
from bioner.evaluate import Report, evaluate

__version__ = "0.1.0"

__all__ = [
    "BionerError", "Report", "Sentence", "Span", "__version__", "evaluate", "read_conll",
    "spans_to_tags", "tags_to_spans", "write_conll",
]
