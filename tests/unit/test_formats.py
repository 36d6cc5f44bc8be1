"""Documents ↔ spans ↔ BIO across PubTator, JSONL, BioC, brat and CoNLL."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioner.corpus.conll import load_conll
from bioner.corpus.documents import (
    ConversionReport,
    Document,
    TextSpan,
    documents_to_sentences,
    sentence_spans,
)
from bioner.corpus.formats import read_documents, write_documents
from bioner.errors import CorpusFormatError
from tests.helpers import bioner

DOCS = Path(__file__).parents[1] / "fixtures" / "docs"


def spans_of(docs: list[Document]) -> list[tuple[str, int, int, str]]:
    return sorted((d.id, s.start, s.end, s.label) for d in docs for s in d.spans)


def test_pubtator_text_is_title_space_abstract_and_offsets_hold() -> None:
    docs = list(read_documents(DOCS / "tiny.pubtator"))
    assert [d.id for d in docs] == ["1001", "1002"]
    assert docs[0].text.startswith("Lithium-induced nephrogenic") and " A 24-year-old" in docs[0].text
    for d in docs:
        for s in d.spans:
            assert d.text[s.start:s.end] == s.text
    assert len(docs[0].spans) == 7  # the CID relation line is not an entity


@pytest.mark.parametrize("fmt", ["jsonl", "bioc-xml", "bioc-json", "pubtator", "brat"])
def test_document_formats_round_trip(fmt: str, tmp_path: Path) -> None:
    docs = list(read_documents(DOCS / "tiny.pubtator"))
    target = tmp_path / ("out" if fmt == "brat" else f"out.{fmt}")
    write_documents(docs, target, fmt)
    back = list(read_documents(target, fmt))
    assert [d.text for d in back] == [d.text for d in docs]
    assert spans_of(back) == spans_of(docs)


def test_spans_to_bio_and_back_keep_offsets_and_report_the_rest() -> None:
    docs = list(read_documents(DOCS / "tiny.pubtator"))
    report = ConversionReport()
    sents = list(documents_to_sentences(docs, "longest", report))
    assert report.overlapping == 1  # "diabetes insipidus" nested in the longer span
    assert report.widened_to_tokens == 1  # "NM" inside the token "NMS"
    assert report.mapped == 11 and report.annotations == 12
    assert any("1002" in d and "inside a token" in d for d in report.details)
    texts = {d.id: d.text for d in docs}
    back = {(s.meta["doc"], t.start, t.end, t.label) for s in sents for t in sentence_spans(s, texts[s.meta["doc"]])}
    aligned = {(d.id, s.start, s.end, s.label) for d in docs for s in d.spans
               if not (d.id == "1001" and s.text == "diabetes insipidus") and s.text != "NM"}
    nms = texts["1002"].index("NMS")
    assert back == aligned | {("1002", nms, nms + 3, "Disease")}  # "NM" widened to the token "NMS"


def test_overlap_policies(tmp_path: Path) -> None:
    doc = Document("d", "renal tubular acidosis", [TextSpan(0, 22, "Disease"), TextSpan(6, 22, "Disease")])
    first = list(documents_to_sentences([doc], "first"))
    assert first[0].tags == ["B-Disease", "I-Disease", "I-Disease"]
    with pytest.raises(CorpusFormatError, match="overlaps"):
        list(documents_to_sentences([doc], "error"))


def test_brat_discontinuous_is_counted() -> None:
    report = ConversionReport()
    (doc,) = read_documents(DOCS, "brat", report)
    assert report.discontinuous == 1 and len(doc.spans) == 3
    assert doc.spans[2].text == "Cisplatin"  # first fragment kept


def test_convert_cli_pubtator_to_conll(tmp_path: Path) -> None:
    out = tmp_path / "out.conll"
    proc = bioner("data", "convert", str(DOCS / "tiny.pubtator"), str(out))
    assert '"overlapping": 1' in proc.stderr and '"widened_to_tokens": 1' in proc.stderr
    sents = load_conll(out)
    assert sents[0].tokens[:3] == ["Lithium", "-", "induced"] and sents[0].tags[:3] == ["B-Chemical", "O", "O"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "abc", "spans": [{"start": 1, "end": 9, "label": "X"}]}\n', encoding="utf-8")
    proc = bioner("data", "convert", str(bad), str(tmp_path / "x.conll"), check=False)
    assert proc.returncode == 1 and f"{bad}:1: span [1:9] lies outside the text" in proc.stderr


def test_a_txt_file_holding_conll_tokens_is_not_read_as_documents(tmp_path: Path) -> None:
    from bioner.corpus.formats import guess_format

    conll = tmp_path / "train.txt"
    conll.write_text("Aspirin\tB-Chemical\ncauses\tO\n\nNo\tO\n", encoding="utf-8")
    raw = tmp_path / "abstracts.txt"
    raw.write_text("Aspirin causes ulcers.\nNo effect was seen.\n", encoding="utf-8")
    assert guess_format(conll) == "conll" and guess_format(raw) == "txt"
    with pytest.raises(CorpusFormatError, match="CoNLL tokens, not documents"):
        list(read_documents(conll))
    assert len(list(read_documents(conll, "txt"))) == 3  # --from txt still reads it line by line
    assert [d.text for d in read_documents(raw)] == ["Aspirin causes ulcers.", "No effect was seen."]
