"""Generative tagging: the instruction prompt, the ``token:TAG`` response, and the parser
that aligns generated lines back to the input so that no position is lost silently.

The ``paper`` layout is the reference study's: the Alpaca preamble, ``### Instruction:`` asking
for the BIO scheme with the types listed (without B-/I-), ``### Input:`` the space-joined
tokens, ``### Response:`` one ``token:TAG`` line per token, then EOS.

Responses are tokenized piece by piece (``"token:"`` then ``"TAG\\n"``), in training and in
constrained decoding alike, so the ids a model learns are exactly the ids it is forced along.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from bioner.corpus.bio import OUTSIDE

ALPACA = ("Below is an instruction that describes a task, paired with an input that provides further "
          "context. Write a response that appropriately completes the request.")


def instruction(types: Sequence[str]) -> str:
    return ("Identify the entities in the input and apply the BIO labeling scheme with the following "
            f"labels: {', '.join(types)}. Answer with one token:TAG line per input token.")


def prompt_text(tokens: Sequence[str], types: Sequence[str]) -> str:
    return (f"{ALPACA}\n\n### Instruction:\n{instruction(types)}\n\n### Input:\n{' '.join(tokens)}"
            "\n\n### Response:\n")


def response_pieces(tokens: Sequence[str], tags: Sequence[str]) -> list[str]:
    out = []
    for tok, tag in zip(tokens, tags):
        out += [f"{tok}:", f"{tag}\n"]
    return out


@dataclass(slots=True)
class GenerationCounts:
    """What free generation got wrong, per sentence and summed (reported, never hidden)."""

    mismatched_tokens: int = 0  # input tokens with no aligned output line (tagged O)
    inserted_lines: int = 0  # output lines matching no input token
    replaced_tokens: int = 0  # output token text differs from the input token it stands for
    malformed_lines: int = 0  # lines that are not token:TAG
    invalid_tags: int = 0  # TAG not in the label set (tagged O)
    sentences_with_problems: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: "GenerationCounts") -> None:
        for name in ("mismatched_tokens", "inserted_lines", "replaced_tokens", "malformed_lines",
                     "invalid_tags", "sentences_with_problems"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples += other.examples[: max(0, 5 - len(self.examples))]

    def to_dict(self) -> dict[str, int | list[str]]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def parse_response(text: str, tokens: Sequence[str], labels: set[str]) -> tuple[list[str], GenerationCounts]:
    """Align generated ``token:TAG`` lines to the input tokens; count every discrepancy.

    Like the reference study this uses difflib's SequenceMatcher on the token strings, but an
    input token left without a line is tagged ``O`` *and counted*, as are inserted, replaced and
    malformed lines and unknown tags.
    """
    counts = GenerationCounts()
    out_tokens: list[str] = []
    out_tags: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        tok, sep, tag = line.rpartition(":")
        if not sep or not tok:
            counts.malformed_lines += 1
            continue
        tag = tag.strip()
        if tag not in labels:
            counts.invalid_tags += 1
            tag = OUTSIDE
        out_tokens.append(tok.strip())
        out_tags.append(tag)
    tags = [OUTSIDE] * len(tokens)
    matched = [False] * len(tokens)
    matcher = difflib.SequenceMatcher(a=list(tokens), b=out_tokens, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                tags[i1 + k] = out_tags[j1 + k]
                matched[i1 + k] = True
        elif op == "replace":
            n = min(i2 - i1, j2 - j1)  # pair up position by position; the rest is unmatched
            for k in range(n):
                tags[i1 + k] = out_tags[j1 + k]
                matched[i1 + k] = True
            counts.replaced_tokens += n
            counts.inserted_lines += (j2 - j1) - n
        elif op == "insert":
            counts.inserted_lines += j2 - j1
    counts.mismatched_tokens = matched.count(False)
    if counts.mismatched_tokens or counts.inserted_lines or counts.replaced_tokens or \
            counts.malformed_lines or counts.invalid_tags:
        counts.sentences_with_problems = 1
        counts.examples.append(" ".join(tokens)[:120])
    return tags, counts
