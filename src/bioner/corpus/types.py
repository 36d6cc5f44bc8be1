"""The two types every stage shares: a tokenized sentence and a token span.

Span convention, defined here once: ``start`` is the index of the first token, ``end`` is
exclusive, so ``tokens[span.start:span.end]`` are the entity's tokens and
``span.end - span.start`` is its length in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class Span:
    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"span needs 0 <= start < end, got start={self.start} end={self.end}")

    @property
    def length(self) -> int:
        return self.end - self.start

    def overlaps(self, other: "Span") -> bool:
        """True when the spans share at least one token (the last token counts too)."""
        return self.start < other.end and other.start < self.end


@dataclass(slots=True)
class Sentence:
    """One tokenized sentence, optionally tagged, remembering where it came from.

    ``source`` is ``path:line`` of the sentence's first token so that any later error can
    point at the file; ``offsets`` are character offsets into the original text when the
    sentence was made from raw text.
    """

    id: str
    tokens: list[str]
    tags: list[str] | None = None
    offsets: list[tuple[int, int]] | None = None
    source: str | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tags is not None and len(self.tags) != len(self.tokens):
            raise ValueError(
                f"sentence {self.id}: {len(self.tokens)} tokens but {len(self.tags)} tags"
            )
        if self.offsets is not None and len(self.offsets) != len(self.tokens):
            raise ValueError(
                f"sentence {self.id}: {len(self.tokens)} tokens but {len(self.offsets)} offsets"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def where(self) -> str:
        return self.source or f"sentence {self.id}"
