"""`bioner data fetch` from local archives and from a loopback HTTP server (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioner.corpus.conll import load_conll
from bioner.corpus.fetch import fetch
from bioner.errors import DatasetNotFoundError
from tests.helpers import bioner

DOCS = Path(__file__).parents[1] / "fixtures" / "docs"
TSV = "-DOCSTART-\tO\n\nAspirin\tB-Chemical\ncauses\tO\nulcers\tB-Disease\n.\tO\n\n"


def mtl_tree(root: Path) -> Path:
    folder = root / "MTL-Bioinformatics-2016-master" / "data" / "BC5CDR-IOB"
    folder.mkdir(parents=True)
    for name in ("train.tsv", "devel.tsv", "test.tsv"):
        (folder / name).write_text(TSV, encoding="utf-8")
    return root


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    root = mtl_tree(tmp_path / "www")
    (root / "BioRED").mkdir()
    with zipfile.ZipFile(root / "BioRED" / "BIORED.zip", "w") as z:
        for member in ("Train.PubTator", "Dev.PubTator", "Test.PubTator"):
            z.write(DOCS / "tiny.pubtator", f"BioRED/{member}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_conll_from_a_local_archive(tmp_path: Path) -> None:
    archive = tmp_path / "mtl.zip"
    tree = mtl_tree(tmp_path / "tree")
    with zipfile.ZipFile(archive, "w") as z:
        for p in tree.rglob("*.tsv"):
            z.write(p, str(p.relative_to(tree)))
    folder, warnings = fetch("bc5cdr", tmp_path / "data", from_file=archive)
    assert folder.name == "BC5CDR"
    sents = load_conll(folder / "train.txt")
    assert [s.tokens for s in sents] == [["Aspirin", "causes", "ulcers", "."]]
    assert (folder / "train.txt").read_text() == "Aspirin\tB-Chemical\ncauses\tO\nulcers\tB-Disease\n.\tO\n\n"
    assert "sha256" in (folder / "SOURCE.md").read_text() and len(warnings) == 3
    with pytest.raises(DatasetNotFoundError, match="already exists"):
        fetch("BC5CDR", tmp_path / "data", from_file=archive)


def test_fetch_over_loopback_http_with_checksums(server: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(TSV.encode()).hexdigest()
    folder, warnings = fetch("BC5CDR", tmp_path / "d", mirror=server + "/MTL-Bioinformatics-2016-master/data",
                             sha256={"train": digest, "dev": digest, "test": digest})
    assert warnings == [] and len(load_conll(folder / "test.txt")) == 1
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch for train"):
        fetch("BC5CDR", tmp_path / "e", mirror=server + "/MTL-Bioinformatics-2016-master/data",
              sha256={"train": "0" * 64})


def test_fetch_biored_pubtator_zip_via_cli(server: str, tmp_path: Path) -> None:
    bioner("data", "fetch", "BioRED", "--data-dir", str(tmp_path), "--mirror", server)
    sents = load_conll(tmp_path / "BioRED" / "train.txt")
    assert sents[0].tokens[:3] == ["Lithium", "-", "induced"] and sents[0].tags[0] == "B-Chemical"
    assert "overlapping" in (tmp_path / "BioRED" / "SOURCE.md").read_text()


def test_fetch_without_network_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="--from-file"):
        fetch("NCBI-disease", tmp_path, mirror="http://127.0.0.1:9")
