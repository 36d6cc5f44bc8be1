"""Sentence splitting and tokenization on hand-written tricky biomedical text."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioner.corpus import text as text_module
from bioner.corpus.text import _splitter, split_sentences, text_to_sentences, tokenize

# (text, expected sentences) — written for bioner, one rule each
CASES = [
    ("Smith et al. reported renal injury. It resolved.", ["Smith et al. reported renal injury.", "It resolved."]),
    ("Drugs (e.g. aspirin) were stopped. Pain fell.", ["Drugs (e.g. aspirin) were stopped.", "Pain fell."]),
    ("Nephrotoxic agents, i.e. cisplatin, were given. Urea rose.",
     ["Nephrotoxic agents, i.e. cisplatin, were given.", "Urea rose."]),
    ("See Fig. 2 for details. Rats recovered.", ["See Fig. 2 for details.", "Rats recovered."]),
    ("Lithium vs. placebo was tested. No effect.", ["Lithium vs. placebo was tested.", "No effect."]),
    ("The dose was approx. 3 mg per day. It was safe.", ["The dose was approx. 3 mg per day.", "It was safe."]),
    ("Mice got 2.5 mg/kg (p < 0.05). Weight fell.", ["Mice got 2.5 mg/kg (p < 0.05).", "Weight fell."]),
    ("E. coli was cultured overnight. Growth was slow.", ["E. coli was cultured overnight.", "Growth was slow."]),
    ("We used 1,2-dichloroethane and 2,4-D. Both were toxic.",
     ["We used 1,2-dichloroethane and 2,4-D.", "Both were toxic."]),
    ("Renal failure was frequent [12]. Dialysis helped.", ["Renal failure was frequent [12].", "Dialysis helped."]),
    ("BACKGROUND\nCisplatin is nephrotoxic.\n\nMETHODS\nRats were treated.",
     ["BACKGROUND\nCisplatin is nephrotoxic.", "METHODS\nRats were treated."]),
    ("Values were 3.14 and 2.71. Both rose.", ["Values were 3.14 and 2.71.", "Both rose."]),
]


@pytest.fixture(params=["blingfire", "pysbd"])
def splitter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Either sentence splitter: pysbd is what runs where blingfire's native library does not load."""
    if request.param == "pysbd":
        monkeypatch.setitem(sys.modules, "blingfire", None)  # import blingfire now raises ImportError
    else:
        pytest.importorskip("blingfire", reason="blingfire installs on x86-64 only")
    _splitter.cache_clear()
    assert (_splitter().__name__ == "<lambda>") == (request.param == "blingfire")
    yield request.param
    _splitter.cache_clear()


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_splitter(text: str, expected: list[str], splitter: str) -> None:
    got = [text[a:b] for a, b in split_sentences(text)]
    if text.startswith("BACKGROUND"):  # headers may stand alone or lead their sentence
        assert "".join(got).replace("\n", "") == "".join(expected).replace("\n", "")
        assert len(got) >= 2
    else:
        assert got == expected


def test_tokens_follow_benchmark_convention() -> None:
    assert [t for t, _, _ in tokenize("5-fluorouracil (2.5 mg/kg) Parkinson's")] == [
        "5", "-", "fluorouracil", "(", "2", ".", "5", "mg", "/", "kg", ")", "Parkinson", "'", "s"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_offsets_always_hold_and_cover_every_non_space(text: str) -> None:
    toks = tokenize(text)
    assert all(text[a:b] == t for t, a, b in toks)
    covered = {i for _, a, b in toks for i in range(a, b)}
    assert all(c.isspace() for i, c in enumerate(text) if i not in covered)


@given(st.lists(st.sampled_from(["Aspirin", "et al.", "e.g.", "Fig. 3", "2.5", "mg/kg", ".", "!", "?", "\n",
                                 "\n\n", "  ", "\t", "E. coli", "(p < 0.05)", "ångström", "β-blockers"]),
                max_size=40).map(" ".join))
def test_sentences_cover_all_text_in_order(text: str) -> None:
    sents = text_to_sentences(text)
    joined = [t for s in sents for t in s.tokens]
    assert joined == [t for t, _, _ in tokenize(text)]
    for s in sents:
        assert s.offsets is not None
        assert all(text[a:b] == t for t, (a, b) in zip(s.tokens, s.offsets))


@pytest.mark.parametrize("found", ["raises", [(30, 12), (5, 900)], [(8, 20), (3, 9)], []])
def test_a_splitter_failure_costs_boundaries_never_text(found: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def spans(text: str) -> list[tuple[int, int]]:
        if found == "raises":
            raise AssertionError("as blingfire's offset mapping does on a few inputs")
        return found  # type: ignore[return-value]

    monkeypatch.setattr(text_module, "_splitter", lambda: spans)  # whichever splitter loads here
    text = "Cisplatin is nephrotoxic. Rats were treated with 2.5 mg/kg. Urea rose."
    sents = text_to_sentences(text)
    assert [t for s in sents for t in s.tokens] == [t for t, _, _ in tokenize(text)]
    assert all(text[a:b] == t for s in sents for t, (a, b) in zip(s.tokens, s.offsets or []))
