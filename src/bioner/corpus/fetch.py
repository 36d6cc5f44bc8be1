"""``bioner data fetch``: download a public benchmark, check it, convert it, record provenance.

Each source names where its files live; the files are downloaded (or taken from a local
archive with ``--from-file``), their SHA-256 compared with the expected one when known,
converted to ``DATA_DIR/NAME/{train,dev,test}.txt`` and described in ``SOURCE.md``.  A mirror
(``--mirror`` / ``$BIONER_FETCH_MIRROR``) replaces the upstream URL prefix, e.g. for a local copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bioner.corpus.conll import read_conll, write_conll
from bioner.corpus.documents import ConversionReport, documents_to_sentences
from bioner.corpus.formats import read_pubtator
from bioner.errors import CorpusFormatError, DatasetNotFoundError
from bioner.files import write_folder_atomically, write_text_atomic

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")

MTL = "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/master/data"
UPSTREAM_PREFIXES = (MTL, "https://ftp.ncbi.nlm.nih.gov/pub/lu")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    kind: str  # "conll": one IOB file per split; "pubtator-zip": one archive of PubTator files
    urls: dict[str, str]  # split (or "archive") -> URL
    members: dict[str, str] = field(default_factory=dict)  # split -> file name inside the archive
    sha256: dict[str, str] = field(default_factory=dict)  # URL key -> expected digest, when pinned
    citation: str = ""


def _mtl(folder: str, citation: str) -> dict[str, str]:
    return {"train": f"{MTL}/{folder}/train.tsv", "dev": f"{MTL}/{folder}/devel.tsv", "test": f"{MTL}/{folder}/test.tsv"}


SOURCES: dict[str, Source] = {
    "BC5CDR": Source("BC5CDR", "conll", _mtl("BC5CDR-IOB", ""), citation="Li et al. 2016, BioCreative V CDR"),
    "NCBI-disease": Source("NCBI-disease", "conll", _mtl("NCBI-disease-IOB", ""), citation="Dogan et al. 2014"),
    "BC2GM": Source("BC2GM", "conll", _mtl("BC2GM-IOB", ""), citation="Smith et al. 2008"),
    "JNLPBA": Source("JNLPBA", "conll", _mtl("JNLPBA", ""), citation="Kim et al. 2004"),
    "LINNAEUS": Source("LINNAEUS", "conll", _mtl("linnaeus-IOB", ""), citation="Gerner et al. 2010"),
    "BioRED": Source("BioRED", "pubtator-zip", {"archive": "https://ftp.ncbi.nlm.nih.gov/pub/lu/BioRED/BIORED.zip"},
                     members={"train": "Train.PubTator", "dev": "Dev.PubTator", "test": "Test.PubTator"},
                     citation="Luo et al. 2022"),
}


def _download(url: str, mirror: str | None, timeout: float = 120) -> bytes:
    if mirror:
        for prefix in UPSTREAM_PREFIXES:
            if url.startswith(prefix):
                url = mirror.rstrip("/") + url[len(prefix):]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https/mirror URLs
            return resp.read()
    except OSError as exc:
        raise DatasetNotFoundError(f"cannot download {url} ({exc}); without a network use --from-file ARCHIVE") from exc


def _from_archive(archive: Path, wanted: str) -> bytes:
    """A file from a zip / tar(.gz) archive or a folder, matched by the end of its path."""
    if archive.is_dir():
        hits = [p for p in archive.rglob("*") if p.is_file() and str(p).endswith(wanted)]
        if hits:
            return hits[0].read_bytes()
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.endswith(wanted):
                    return z.read(name)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                if member.isfile() and member.name.endswith(wanted):
                    handle = t.extractfile(member)
                    if handle is not None:
                        return handle.read()
    else:
        raise DatasetNotFoundError(f"{archive} is neither a folder, a zip nor a tar archive")
    raise DatasetNotFoundError(f"{archive} holds no file ending in {wanted}")


def fetch(name: str, data_dir: Path, *, from_file: Path | None = None, mirror: str | None = None,
          sha256: dict[str, str] | None = None, force: bool = False) -> tuple[Path, list[str]]:
    """Fetch ``name`` into ``data_dir/name``; returns the folder and warnings to show."""
    canonical = next((k for k in SOURCES if k.lower() == name.lower()), None)
    if canonical is None:
        raise DatasetNotFoundError(f"no public source known for '{name}' (fetchable: {', '.join(SOURCES)})")
    source = SOURCES[canonical]
    target = data_dir / canonical
    if target.exists() and any(target.iterdir()) and not force:
        raise DatasetNotFoundError(f"{target} already exists; pass --force to replace it")
    mirror = mirror or os.environ.get("BIONER_FETCH_MIRROR")
    for key, digest in (sha256 or {}).items():
        if key not in source.urls:
            raise DatasetNotFoundError(f"--sha256 {key}=…: {canonical} has no part '{key}' "
                                       f"(parts: {', '.join(source.urls)})")
        if not _SHA256.match(digest):
            raise DatasetNotFoundError(f"--sha256 {key}={digest}: a SHA-256 digest is 64 hexadecimal characters")
    expected = {**source.sha256, **{k: v.lower() for k, v in (sha256 or {}).items()}}
    warnings: list[str] = []
    blobs: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for key, url in source.urls.items():
        data = _obtain(source, url, from_file, mirror)
        digest = hashlib.sha256(data).hexdigest()
        if key in expected and expected[key] != digest:
            raise DatasetNotFoundError(f"checksum mismatch for {key} ({url}): expected {expected[key]}, got {digest}")
        if key not in expected:
            warnings.append(f"{key}: no pinned checksum; recorded sha256 {digest} in SOURCE.md")
        blobs[key], digests[key] = data, digest
    # every split and SOURCE.md are written into a fresh folder that replaces ``target`` only
    # when all of them are complete: a failure leaves the old dataset whole
    write_folder_atomically(target, lambda folder: _write_dataset(folder, canonical, source, blobs, digests,
                                                                  from_file))
    return target, warnings


def _write_dataset(target: Path, canonical: str, source: Source, blobs: dict[str, bytes],
                   digests: dict[str, str], from_file: Path | None) -> None:
    report = ConversionReport()
    counts: dict[str, int] = {}
    if source.kind == "conll":
        for split, data in blobs.items():
            tmp = target / f".{split}.download"
            tmp.write_bytes(data)
            try:
                counts[split] = write_conll(read_conll(tmp), target / f"{split}.txt")
            except CorpusFormatError as exc:  # name the file the user knows, not the temporary copy
                raise CorpusFormatError(_origin(source.urls[split], from_file), exc.line, exc.problem) from None
            finally:
                tmp.unlink()
    else:
        archive = blobs["archive"]
        for split, member in source.members.items():
            raw = _zip_member(archive, member)
            tmp = target / f".{split}.pubtator"
            tmp.write_bytes(raw)
            try:
                counts[split] = write_conll(documents_to_sentences(read_pubtator(tmp), "longest", report),
                                            target / f"{split}.txt")
            except CorpusFormatError as exc:
                raise CorpusFormatError(f"{_origin(source.urls['archive'], from_file)}:{member}", exc.line,
                                        exc.problem) from None
            finally:
                tmp.unlink()
    lines = [f"# {canonical}", "", f"Fetched by `bioner data fetch` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             f"Citation: {source.citation}.", "", "| part | from | sha256 |", "|---|---|---|"]
    for key, url in source.urls.items():
        origin = str(from_file) if from_file else url
        lines.append(f"| {key} | {origin} | {digests[key]} |")
    lines += ["", "Sentences written: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    if source.kind != "conll":
        summary = {k: v for k, v in report.to_dict().items() if k != "details" and v}
        lines += ["", f"Conversion (own tokenization, overlaps: longest kept): {summary}"]
    write_text_atomic(target / "SOURCE.md", "\n".join(lines) + "\n")


def _origin(url: str, from_file: Path | None) -> str:
    """Where a part came from, as the user named it: the URL, or the file inside --from-file."""
    if from_file is None:
        return url
    return str(from_file / "/".join(url.rsplit("/", 2)[-2:])) if from_file.is_dir() else f"{from_file}:{url.rsplit('/', 1)[-1]}"


def _obtain(source: Source, url: str, from_file: Path | None, mirror: str | None) -> bytes:
    if from_file is None:
        return _download(url, mirror)
    if source.kind == "conll":  # the archive holds FOLDER/train.tsv etc., as upstream
        return _from_archive(from_file, "/".join(url.rsplit("/", 2)[-2:]))
    if from_file.is_file():  # the upstream archive itself
        return from_file.read_bytes()
    buf = io.BytesIO()  # a folder holding the PubTator files: pack it like the upstream zip
    with zipfile.ZipFile(buf, "w") as z:
        for member in source.members.values():
            z.writestr(member, _from_archive(from_file, member))
    return buf.getvalue()


def _zip_member(archive: bytes, member: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        for name in z.namelist():
            if name.endswith(member):
                return z.read(name)
    raise DatasetNotFoundError(f"the archive holds no {member}")
