"""Document formats: JSONL, PubTator, brat standoff, BioC XML/JSON — read and write.

JSONL holds one ``{"id", "text", "spans": [{"start", "end", "label", "text"}]}`` per line,
offsets into that record's ``text``.  PubTator's document text is title + one space +
abstract, so its offsets stay those of the file.  BioC goes through the ``bioc`` package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bioner.corpus.documents import ConversionReport, Document, TextSpan
from bioner.corpus.labels import is_valid_tag
from bioner.errors import CorpusFormatError
from bioner.files import atomic_write, write_text_atomic

_INT = re.compile(r"^-?\d+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")

DOC_FORMATS = ("jsonl", "pubtator", "brat", "bioc-xml", "bioc-json", "txt")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its end)``, refusing bytes that are not UTF-8 with path:line."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise CorpusFormatError(path, 0, f"cannot open file ({exc.strerror})") from None
    with handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CorpusFormatError(path, lineno, f"non-UTF-8 bytes at byte {exc.start} of the line "
                                        f"({raw[exc.start:exc.start + 4]!r}); re-encode the file as UTF-8") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")


def _read_text(path: Path) -> str:
    """A whole text file as it is (no newline translation: offsets count every character)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise CorpusFormatError(path, 0, f"non-UTF-8 bytes at byte {exc.start}; re-encode the file as UTF-8") from None


def looks_like_conll(path: Path, sample: int = 200) -> bool:
    """A ``.txt`` may be raw text (one document per line) or CoNLL (the shared corpora are):
    CoNLL when every sampled line is blank, a lone token, or a few fields ending in a BIO tag."""
    seen = 0
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [x.strip() for x in line.split("\t")] if "\t" in line else line.split()
            if not fields[0] or " " in fields[0] or len(fields) > 4:
                return False
            if len(fields) > 1 and (" " in fields[-1] or not is_valid_tag(fields[-1], "iobes")):
                return False
            seen += 1
            if seen >= sample:
                break
    return seen > 0


def guess_format(path: Path) -> str:
    """From the name; a ``.txt`` that reads as CoNLL tokens (as the shared corpora do) is ``conll``."""
    name = path.name.lower()
    if path.is_dir():
        return "brat"
    for suffix, fmt in ((".jsonl", "jsonl"), (".pubtator", "pubtator"), (".ann", "brat"), (".xml", "bioc-xml"),
                        (".bioc.json", "bioc-json"), (".json", "bioc-json"), (".conll", "conll"),
                        (".txt", "txt")):
        if name.endswith(suffix):
            if fmt == "txt" and path.is_file() and looks_like_conll(path):
                return "conll"
            return fmt
    raise CorpusFormatError(path, 0, "cannot tell the format from the file name; pass --from/--to")


# ------------------------------------------------------------------ JSONL


def read_jsonl(path: Path) -> Iterator[Document]:
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise CorpusFormatError(path, lineno, f"not valid JSON ({exc})") from None
        if not isinstance(rec, dict):
            raise CorpusFormatError(path, lineno, f"a record must be a JSON object, got {type(rec).__name__}")
        text = rec.get("text")
        if not isinstance(text, str):
            raise CorpusFormatError(path, lineno, f"'text' must be a string, got "
                                    f"{'nothing' if text is None else type(text).__name__}")
        raw_spans = rec.get("spans", [])
        if not isinstance(raw_spans, list):
            raise CorpusFormatError(path, lineno, f"'spans' must be a list, got {type(raw_spans).__name__}")
        spans = []
        for k, item in enumerate(raw_spans):
            if not isinstance(item, dict) or not all(isinstance(item.get(key), int) and not isinstance(
                    item.get(key), bool) for key in ("start", "end")) or not isinstance(item.get("label"), str):
                raise CorpusFormatError(path, lineno, f"spans[{k}] needs integer 'start'/'end' and a string "
                                        f"'label', got {json.dumps(item)[:80]}")
            spans.append(TextSpan(item["start"], item["end"], item["label"], str(item.get("text", ""))))
        for s in spans:
            if not 0 <= s.start < s.end <= len(text):
                raise CorpusFormatError(path, lineno, f"span [{s.start}:{s.end}] lies outside the text ({len(text)} chars)")
        doc_id = rec.get("id", f"{path.stem}-{lineno}")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
            raise CorpusFormatError(path, lineno, f"'id' must be a string or an integer, got {json.dumps(doc_id)[:40]}")
        yield Document(str(doc_id), text, spans)


def document_record(doc: Document) -> dict[str, object]:
    """The one record shape of tagged text everywhere (predict, JSONL, the server):
    ``{"id", "text", "spans": [{"start", "end", "label", "text", "score"?}]}``."""
    return {"id": doc.id, "text": doc.text, "spans": [s.to_dict() for s in doc.spans]}


def write_jsonl(docs: Iterable[Document], path: Path) -> int:
    n = 0
    with atomic_write(path) as out:
        for doc in docs:
            out.write(json.dumps(document_record(doc), ensure_ascii=False) + "\n")
            n += 1
    return n


# ------------------------------------------------------------------ plain text


def read_txt(path: Path) -> Iterator[Document]:
    """One document per non-empty line (for tagging raw text)."""
    for lineno, line in _lines(path):
        if line.strip():
            yield Document(f"{path.stem}-{lineno}", line)


# ------------------------------------------------------------------ PubTator


def read_pubtator(path: Path) -> Iterator[Document]:
    title = abstract = None
    pmid = ""
    spans: list[TextSpan] = []

    def flush() -> Document | None:
        if title is None:
            return None
        text = title if abstract is None else f"{title} {abstract}"
        return Document(pmid, text, list(spans), {"title_length": str(len(title))})

    for lineno, line in _lines(path):
        if not line.strip():
            doc = flush()
            if doc:
                yield doc
            title = abstract = None
            spans = []
            continue
        if "|t|" in line[:40] and "\t" not in line.split("|t|")[0]:
            doc = flush()
            if doc:
                yield doc
            pmid, title = line.split("|t|", 1)
            abstract, spans = None, []
        elif "|a|" in line[:40] and "\t" not in line.split("|a|")[0]:
            abstract = line.split("|a|", 1)[1]
        else:
            cols = line.split("\t")
            if title is None or cols[0] != pmid or len(cols) < 4:
                raise CorpusFormatError(path, lineno, f"expected PMID<TAB>start<TAB>end<TAB>text<TAB>type"
                                        f"{' for ' + pmid if pmid else ''}, got {line[:80]!r}")
            if not (_INT.match(cols[1]) or _INT.match(cols[2])):
                continue  # a relation line (PMID, relation type, ids…): not an entity
            if not (_INT.match(cols[1]) and _INT.match(cols[2])) or len(cols) < 5:
                raise CorpusFormatError(path, lineno, f"an entity line needs integer start and end and a "
                                        f"type: {line[:80]!r}")
            a, b = int(cols[1]), int(cols[2])
            length = len(title) + (0 if abstract is None else 1 + len(abstract))
            if not 0 <= a < b <= length:
                raise CorpusFormatError(path, lineno, f"entity offsets {a}-{b} lie outside document "
                                        f"{pmid} (title + abstract: {length} characters)")
            spans.append(TextSpan(a, b, cols[4], cols[3], id=cols[5] if len(cols) > 5 else None))
    doc = flush()
    if doc:
        yield doc


def write_pubtator(docs: Iterable[Document], path: Path) -> int:
    n = 0
    with atomic_write(path) as out:
        for doc in docs:
            k = int(doc.meta.get("title_length", len(doc.text)))
            title, abstract = doc.text[:k], doc.text[k + 1:]
            out.write(f"{doc.id}|t|{title}\n")
            if k < len(doc.text):
                out.write(f"{doc.id}|a|{abstract}\n")
            for s in doc.spans:
                out.write(f"{doc.id}\t{s.start}\t{s.end}\t{doc.text[s.start:s.end]}\t{s.label}"
                          f"{chr(9) + s.id if s.id else ''}\n")
            out.write("\n")
            n += 1
    return n


# ------------------------------------------------------------------ brat


def read_brat(folder_or_file: Path, report: ConversionReport | None = None) -> Iterator[Document]:
    """``.txt`` + ``.ann`` pairs; discontinuous spans keep their first fragment (counted)."""
    files = sorted(folder_or_file.glob("*.ann")) if folder_or_file.is_dir() else [folder_or_file]
    for ann in files:
        txt = ann.with_suffix(".txt")
        if not txt.is_file():
            raise CorpusFormatError(ann, 0, f"no text file {txt.name} beside it")
        text = _read_text(txt)
        spans = []
        for lineno, line in _lines(ann):
            if not line.startswith("T"):
                continue  # relations, events, attributes, notes
            try:
                tid, middle, surface = line.split("\t")
                label, locs = middle.split(" ", 1)
                frags = [tuple(int(x) for x in frag.split()) for frag in locs.split(";")]
            except ValueError:
                raise CorpusFormatError(ann, lineno, "not a brat text-bound annotation (ID<TAB>TYPE START "
                                        f"END<TAB>TEXT): {line[:80]!r}") from None
            for frag in frags:
                if len(frag) != 2 or not 0 <= frag[0] < frag[1] <= len(text):
                    raise CorpusFormatError(ann, lineno, f"offsets {' '.join(map(str, frag))} lie outside "
                                            f"{txt.name} ({len(text)} characters) or are not START END")
            span = TextSpan(frags[0][0], frags[0][1], label, text[frags[0][0]:frags[0][1]], id=tid)
            if len(frags) > 1 and report is not None:
                report.note("discontinuous", ann.stem, span, f"discontinuous ({locs}): first fragment kept")
            spans.append(span)
        yield Document(ann.stem, text, spans)


def write_brat(docs: Iterable[Document], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for doc in docs:
        if not _SAFE_NAME.match(doc.id):
            raise CorpusFormatError(folder, 0, f"document id {doc.id!r} cannot be a brat file name "
                                    "(letters, digits, '.', '_' and '-' only, not starting with '.')")
        with atomic_write(folder / f"{doc.id}.txt", newline="") as out:
            out.write(doc.text)
        lines = [f"T{k + 1}\t{s.label} {s.start} {s.end}\t{doc.text[s.start:s.end]}" for k, s in enumerate(doc.spans)]
        write_text_atomic(folder / f"{doc.id}.ann", "".join(line + "\n" for line in lines))
        n += 1
    return n


# ------------------------------------------------------------------ BioC


def _line_of(path: Path, needle: str) -> int:
    """The first line of ``path`` holding ``needle`` (for errors in formats parsed as a whole)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if needle in line:
                return lineno
    return 0


def _bioc_text(path: Path, doc_id: str, passages: list[tuple[int, str]]) -> str:
    """Lay passages out at their offsets; gaps become spaces.  Offsets that overlap another
    passage or leave a gap far larger than the text (which would allocate gigabytes) are errors."""
    total = sum(len(t) for _, t in passages)
    end = max((o + len(t) for o, t in passages), default=0)
    for offset, _ in passages:
        if offset < 0:
            raise CorpusFormatError(path, _line_of(path, f"<offset>{offset}</offset>"),
                                    f"document {doc_id}: negative passage offset {offset}")
    if end > 2 * total + 100_000:
        raise CorpusFormatError(path, _line_of(path, doc_id), f"document {doc_id}: passage offsets reach {end} "
                                f"for {total} characters of text; the offsets are corrupt")
    chars = [" "] * end
    taken = [False] * end
    for offset, text in passages:
        for i, c in enumerate(text):
            if taken[offset + i]:
                raise CorpusFormatError(path, _line_of(path, f"<offset>{offset}</offset>"),
                                        f"document {doc_id}: the passage at offset {offset} overlaps another")
            chars[offset + i], taken[offset + i] = c, True
    return "".join(chars)


def read_bioc(path: Path, fmt: str) -> Iterator[Document]:
    from bioc import biocjson, biocxml

    if fmt == "bioc-xml":
        _check_bioc_root(path)
    with open(path, encoding="utf-8") as handle:
        try:
            collection = biocxml.load(handle) if fmt == "bioc-xml" else biocjson.load(handle)
        except Exception as exc:  # noqa: BLE001 - the bioc package raises many kinds
            raise CorpusFormatError(path, 0, f"not a BioC {fmt[5:].upper()} collection "
                                    f"({exc.__class__.__name__}: {exc})") from None
    for d in collection.documents:
        text = _bioc_text(path, d.id, [(p.offset, p.text or "") for p in d.passages])
        spans = []
        for p in d.passages:
            for a in p.annotations:
                if not a.locations:
                    continue
                loc = a.locations[0]
                if loc.offset < 0 or loc.length <= 0 or loc.offset + loc.length > len(text):
                    raise CorpusFormatError(path, _line_of(path, f'id="{a.id}"') or _line_of(path, d.id),
                                            f"document {d.id}: annotation {a.id} at {loc.offset}+{loc.length} "
                                            f"lies outside the text ({len(text)} characters)")
                label = a.infons.get("type") or a.infons.get("Type") or "Entity"
                spans.append(TextSpan(loc.offset, loc.offset + loc.length, label, a.text or "", id=a.id))
        yield Document(d.id, text, spans)


def _check_bioc_root(path: Path) -> None:
    import xml.etree.ElementTree as ET

    try:
        for _, element in ET.iterparse(path, events=("start",)):
            if element.tag != "collection":
                raise CorpusFormatError(path, _line_of(path, f"<{element.tag}"),
                                        f"not BioC XML: the root element is <{element.tag}>, not <collection>")
            return
    except ET.ParseError as exc:
        raise CorpusFormatError(path, exc.position[0], f"not well-formed XML ({exc})") from None


def write_bioc(docs: Iterable[Document], path: Path, fmt: str) -> int:
    import bioc

    collection = bioc.BioCCollection()
    collection.source = "bioner"
    n = 0
    for doc in docs:
        d = bioc.BioCDocument()
        d.id = doc.id
        p = bioc.BioCPassage()
        p.offset, p.text = 0, doc.text
        for k, s in enumerate(doc.spans):
            a = bioc.BioCAnnotation()
            a.id, a.text = s.id or f"T{k + 1}", doc.text[s.start:s.end]
            a.infons["type"] = s.label
            if s.score is not None:
                a.infons["score"] = f"{s.score:.4f}"
            a.add_location(bioc.BioCLocation(s.start, s.end - s.start))
            p.add_annotation(a)
        d.add_passage(p)
        collection.add_document(d)
        n += 1
    from bioc import biocjson, biocxml

    with atomic_write(path) as out:
        (biocxml.dump if fmt == "bioc-xml" else biocjson.dump)(collection, out)
    return n


def read_documents(path: Path, fmt: str | None = None, report: ConversionReport | None = None) -> Iterator[Document]:
    fmt = fmt or guess_format(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "pubtator":
        return read_pubtator(path)
    if fmt == "brat":
        return read_brat(path, report)
    if fmt in ("bioc-xml", "bioc-json"):
        return read_bioc(path, fmt)
    if fmt == "txt":
        return read_txt(path)
    if fmt == "conll":
        raise CorpusFormatError(path, 0, "this file holds CoNLL tokens, not documents: tag it with "
                                "`bioner predict --input`, or pass --from txt to read one document per line")
    raise CorpusFormatError(path, 0, f"unknown document format '{fmt}' (one of {', '.join(DOC_FORMATS)})")


def write_documents(docs: Iterable[Document], path: Path, fmt: str | None = None) -> int:
    fmt = fmt or guess_format(path)
    if fmt == "jsonl":
        return write_jsonl(docs, path)
    if fmt == "pubtator":
        return write_pubtator(docs, path)
    if fmt == "brat":
        return write_brat(docs, path if path.suffix != ".ann" else path.parent)
    if fmt in ("bioc-xml", "bioc-json"):
        return write_bioc(docs, path, fmt)
    raise CorpusFormatError(path, 0, f"cannot write documents as '{fmt}' (one of jsonl, pubtator, brat, bioc-xml, bioc-json)")
