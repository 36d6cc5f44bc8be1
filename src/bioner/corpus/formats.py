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
from bioner.errors import CorpusFormatError

_TAG = re.compile(r"^(O|[BIES]-\S+)$")
DOC_FORMATS = ("jsonl", "pubtator", "brat", "bioc-xml", "bioc-json", "txt")


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
            if len(fields) > 1 and not _TAG.match(fields[-1]):
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
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                text = rec["text"]
                spans = [TextSpan(int(s["start"]), int(s["end"]), str(s["label"]), s.get("text", ""))
                         for s in rec.get("spans", [])]
            except (ValueError, KeyError, TypeError) as exc:
                raise CorpusFormatError(path, lineno, f"not a bioner JSONL record ({exc.__class__.__name__}: {exc})") from exc
            for s in spans:
                if not 0 <= s.start < s.end <= len(text):
                    raise CorpusFormatError(path, lineno, f"span [{s.start}:{s.end}] lies outside the text ({len(text)} chars)")
            yield Document(str(rec.get("id", f"{path.stem}-{lineno}")), text, spans)


def write_jsonl(docs: Iterable[Document], path: Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps({"id": doc.id, "text": doc.text, "spans": [s.to_dict() for s in doc.spans]},
                                 ensure_ascii=False) + "\n")
            n += 1
    return n


# ------------------------------------------------------------------ plain text


def read_txt(path: Path) -> Iterator[Document]:
    """One document per non-empty line (for tagging raw text)."""
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                yield Document(f"{path.stem}-{lineno}", line.rstrip("\r\n"))


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

    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
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
                if cols[0] != pmid or len(cols) < 4:
                    raise CorpusFormatError(path, lineno, f"expected PMID<TAB>start<TAB>end<TAB>text<TAB>type"
                                            f"{' for ' + pmid if pmid else ''}, got {line[:80]!r}")
                if not (cols[1].isdigit() and cols[2].isdigit()):
                    continue  # a relation line (PMID, relation type, ids…): not an entity
                if len(cols) < 5:
                    raise CorpusFormatError(path, lineno, f"entity line without a type: {line[:80]!r}")
                a, b = int(cols[1]), int(cols[2])
                spans.append(TextSpan(a, b, cols[4], cols[3], id=cols[5] if len(cols) > 5 else None))
        doc = flush()
        if doc:
            yield doc


def write_pubtator(docs: Iterable[Document], path: Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as out:
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
        text = txt.read_text(encoding="utf-8")
        spans = []
        with open(ann, encoding="utf-8") as handle:
            for lineno, raw in enumerate(handle, 1):
                line = raw.rstrip("\r\n")
                if not line.startswith("T"):
                    continue  # relations, events, attributes, notes
                try:
                    tid, middle, surface = line.split("\t")
                    label, locs = middle.split(" ", 1)
                    frags = [tuple(int(x) for x in frag.split()) for frag in locs.split(";")]
                except ValueError as exc:
                    raise CorpusFormatError(ann, lineno, f"not a brat text-bound annotation: {line[:80]!r}") from exc
                span = TextSpan(frags[0][0], frags[0][1], label, text[frags[0][0]:frags[0][1]], id=tid)
                if len(frags) > 1 and report is not None:
                    report.note("discontinuous", ann.stem, span, f"discontinuous ({locs}): first fragment kept")
                spans.append(span)
        yield Document(ann.stem, text, spans)


def write_brat(docs: Iterable[Document], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for doc in docs:
        (folder / f"{doc.id}.txt").write_text(doc.text, encoding="utf-8")
        lines = [f"T{k + 1}\t{s.label} {s.start} {s.end}\t{doc.text[s.start:s.end]}" for k, s in enumerate(doc.spans)]
        (folder / f"{doc.id}.ann").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        n += 1
    return n


# ------------------------------------------------------------------ BioC


def read_bioc(path: Path, fmt: str) -> Iterator[Document]:
    from bioc import biocjson, biocxml

    with open(path, encoding="utf-8") as handle:
        try:
            collection = biocxml.load(handle) if fmt == "bioc-xml" else biocjson.load(handle)
        except Exception as exc:  # the bioc package raises many kinds
            raise CorpusFormatError(path, 0, f"not a BioC {fmt[5:].upper()} collection ({exc})") from exc
    for d in collection.documents:
        end = max((p.offset + len(p.text or "") for p in d.passages), default=0)
        chars = [" "] * end
        for p in d.passages:
            for i, c in enumerate(p.text or ""):
                chars[p.offset + i] = c
        text = "".join(chars)
        spans = []
        for p in d.passages:
            for a in p.annotations:
                if not a.locations:
                    continue
                loc = a.locations[0]
                label = a.infons.get("type") or a.infons.get("Type") or "Entity"
                spans.append(TextSpan(loc.offset, loc.offset + loc.length, label, a.text or "", id=a.id))
        yield Document(d.id, text, spans)


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

    with open(path, "w", encoding="utf-8") as out:
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
