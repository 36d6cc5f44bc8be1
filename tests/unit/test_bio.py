from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from bioner.corpus.types import Span
from bioner.errors import BioSchemeError
from tests.helpers import TYPES, valid_iob2

any_tags = st.lists(
    st.sampled_from(["O"] + [f"{p}-{t}" for p in "BI" for t in TYPES]), max_size=30
)


def test_spans_are_half_open() -> None:
    tags = ["B-Chemical", "I-Chemical", "O", "B-Disease"]
    assert tags_to_spans(tags) == [Span(0, 2, "Chemical"), Span(3, 4, "Disease")]


def test_adjacent_entities_of_one_type_stay_apart() -> None:
    assert tags_to_spans(["B-Gene", "B-Gene", "I-Gene"]) == [Span(0, 1, "Gene"), Span(1, 3, "Gene")]


def test_invalid_i_is_repaired_and_counted() -> None:
    repairs = BioRepairs()
    spans = tags_to_spans(["I-Gene", "O", "B-Chemical", "I-Disease"], repairs=repairs)
    assert spans == [Span(0, 1, "Gene"), Span(2, 3, "Chemical"), Span(3, 4, "Disease")]
    assert (repairs.i_after_o, repairs.i_after_other_type) == (1, 1)


def test_strict_bio_raises_with_place() -> None:
    with pytest.raises(BioSchemeError, match=r"s1: invalid IOB2 at token 1: got 'I-Gene' after 'O'"):
        tags_to_spans(["O", "I-Gene"], strict=True, where="s1")


def test_spans_to_tags_rejects_overlaps() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([Span(0, 2, "A"), Span(1, 3, "B")], 4)


@given(valid_iob2())
def test_round_trip_valid(tags: list[str]) -> None:
    assert spans_to_tags(tags_to_spans(tags), len(tags)) == tags


@given(any_tags)
def test_repair_is_idempotent_and_keeps_entities(tags: list[str]) -> None:
    fixed, repairs = repair_bio(tags)
    assert tags_to_spans(fixed) == tags_to_spans(tags)
    again, none = repair_bio(fixed)
    assert again == fixed and none.total == 0
    assert repairs.total == sum(1 for a, b in zip(tags, fixed) if a != b)


@given(valid_iob2())
def test_iobes_and_bilou_round_trip(tags: list[str]) -> None:
    assert iobes_to_iob(iob_to_iobes(tags)) == tags
    assert bilou_to_iob(iob_to_bilou(tags)) == tags


def test_iobes_shapes() -> None:
    tags = ["B-A", "I-A", "I-A", "O", "B-B"]
    assert iob_to_iobes(tags) == ["B-A", "I-A", "E-A", "O", "S-B"]
    assert iob_to_bilou(tags) == ["B-A", "I-A", "L-A", "O", "U-B"]
