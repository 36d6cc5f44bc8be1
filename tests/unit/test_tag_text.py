"""Raw text in, spans with exact character offsets out (any tagger; here a tiny random BERT)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bioner.models import load_tagger
from tests.helpers import bioner, tiny_run_folder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
TEXT = ("Lithium-induced  nephrogenic diabetes insipidus\tappeared (p < 0.05). "
        "Smith et al. saw it too.\n\nNaïve rats given 2.5 mg/kg cisplatin developed ångström-scale lesions.")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run_folder(tmp_path_factory.mktemp("run"), LABELS, seed=3)


def test_tag_text_offsets_are_exact(run: Path) -> None:
    spans = load_tagger(run).tag_text(TEXT)
    assert spans, "a random model still predicts some entities"
    for s in spans:
        assert TEXT[s.start:s.end] == s.text and s.label in ("Chemical", "Disease")
        assert not s.text[0].isspace() and not s.text[-1].isspace()
        assert s.score is not None and 0.0 < s.score <= 1.0  # lowest token probability in the span


STREAM_SCRIPT = """
import resource, sys
from bioner.corpus.documents import Document
from bioner.models import Tagger, load_tagger
tagger = load_tagger(sys.argv[1])
sentence = "Cisplatin (2.5 mg/kg) induced acute renal failure in rats, as Smith et al. noted. "
big = (sentence * 12 + "\\n\\n") * 1020
assert len(big) > 1_000_000
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
small = [Document(f"d{i}", sentence) for i in range(5)]
out = list(tagger.tag_documents([small[0], Document("big", big), *small[1:]], batch_sentences=128))
assert [d.id for d in out] == ["d0", "big", "d1", "d2", "d3", "d4"], [d.id for d in out]
assert all(big[s.start:s.end] == s.text for s in out[1].spans)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, len(out[1].spans))
"""


def test_tag_documents_streams_in_order_with_bounded_memory(run: Path) -> None:
    """A 1 MB document between small ones: order kept, offsets exact, and the resident memory
    it adds stays small (sentences are tagged in batches of 128, not all at once)."""
    proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(run)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    added_mb, n_spans = proc.stdout.split()
    assert float(added_mb) < 400, f"tagging 1 MB added {added_mb} MB of resident memory"


def test_predict_cli_text_and_documents(run: Path, tmp_path: Path) -> None:
    lines = bioner("predict", "--model", str(run), "--text", TEXT).stdout.splitlines()
    assert len(lines) == 1  # one record, the same shape as documents JSONL
    record = json.loads(lines[0])
    assert record["id"] == "text" and record["text"] == TEXT
    assert record["spans"] == [s.to_dict() for s in load_tagger(run).tag_text(TEXT)]
    for span in record["spans"]:
        assert TEXT[span["start"]:span["end"]] == span["text"]
    docs = Path(__file__).parents[1] / "fixtures" / "docs" / "tiny.pubtator"
    for name in ("out.xml", "out.conll"):
        bioner("predict", "--model", str(run), "--input", str(docs), "--output", str(tmp_path / name))
        assert (tmp_path / name).stat().st_size > 0
    bioner("predict", "--model", str(run), "--input", str(docs), "--output", str(tmp_path / "brat"), "--to", "brat")
    assert sorted(p.name for p in (tmp_path / "brat").iterdir()) == ["1001.ann", "1001.txt", "1002.ann", "1002.txt"]


def test_predict_reads_a_conll_txt_as_conll_and_raw_txt_as_documents(run: Path, tmp_path: Path) -> None:
    conll = tmp_path / "test.txt"  # the shared corpora are CoNLL files named .txt
    conll.write_text("Aspirin\tB-Chemical\ninduced\tO\nasthma\tB-Disease\n.\tO\n\nNo\tO\neffect\tO\n",
                     encoding="utf-8")
    bioner("predict", "--model", str(run), "--input", str(conll), "--output", str(tmp_path / "p.conll"))
    blocks = (tmp_path / "p.conll").read_text(encoding="utf-8").strip().split("\n\n")
    assert [len(b.splitlines()) for b in blocks] == [4, 2]
    raw = tmp_path / "docs.txt"
    line = "Naive rats given 2.5 mg/kg cisplatin developed lesions."
    raw.write_text(line + "\n" + line + "\n", encoding="utf-8")
    out = bioner("predict", "--model", str(run), "--input", str(raw)).stdout.splitlines()
    assert len(out) == 2 and json.loads(out[0])["text"] == line
