"""Scale-out: `bioner tag-corpus` on a local Ray (2 CPUs) and `bioner train --nproc 2`.

The Ray tests tag a few thousand documents built from the shared corpora's text and compare
them with single-process `bioner predict`, span for span; they rerun after a shard is deleted
and kill a tagger actor mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bioner.errors import BionerError, CorpusFormatError, InputError
from tests.helpers import bioner, real_data_dir, tiny_run_folder

ray = pytest.importorskip("ray", reason='tag-corpus needs the scale extra: pip install -e ".[scale]"')
pytest.importorskip("pyarrow")

from bioner.scale.corpus import MANIFEST, read_shards, tag_corpus

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def _spans(doc: dict | object) -> list[tuple[int, int, str, str]]:  # type: ignore[type-arg]
    if isinstance(doc, dict):
        return [(s["start"], s["end"], s["label"], s["text"]) for s in doc["spans"]]
    return [(s.start, s.end, s.label, s.text) for s in doc.spans]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """~2,000 documents (3 sentences each) from four shared corpora, as two JSONL files, a .txt
    (one document per line) and a Parquet file; plus a tiny model and a local Ray."""
    data = real_data_dir()
    if data is None:
        pytest.skip("no shared datasets ($BIONER_DATA_DIR or ../shared/datasets): the corpus is built from them")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bioner.corpus.conll import read_conll

    root = tmp_path_factory.mktemp("corpus")
    inputs = root / "in"
    inputs.mkdir()
    texts: dict[str, list[str]] = {}
    for name in ("BC5CDR", "NCBI-disease", "BC2GM", "JNLPBA"):
        path = data / name / "train.txt"
        if not path.is_file():
            pytest.skip(f"{path} is missing")
        sents = [" ".join(s.tokens) for s in read_conll(path)][:1500]
        texts[name] = [" ".join(sents[k:k + 3]) for k in range(0, len(sents), 3)]
    for name in ("BC5CDR", "NCBI-disease"):
        with open(inputs / f"{name}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps({"id": f"{name}-{k}", "text": text}) + "\n" for k, text in enumerate(texts[name]))
    (inputs / "BC2GM.txt").write_text("\n".join(texts["BC2GM"]) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"id": [f"J-{k}" for k in range(len(texts["JNLPBA"]))], "text": texts["JNLPBA"]}),
                   inputs / "JNLPBA.parquet")
    # the Parquet file's documents as JSONL too, for `bioner predict` (which reads no Parquet)
    with open(root / "JNLPBA.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"id": f"J-{k}", "text": text}) + "\n" for k, text in enumerate(texts["JNLPBA"]))
    model = tiny_run_folder(root / "model-run", LABELS, crf=True)
    expected: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for name, src in (("BC5CDR", inputs / "BC5CDR.jsonl"), ("NCBI-disease", inputs / "NCBI-disease.jsonl"),
                      ("BC2GM", inputs / "BC2GM.txt"), ("JNLPBA", root / "JNLPBA.jsonl")):
        out_file = root / f"expected-{name}.jsonl"
        bioner("predict", "--model", str(model), "--input", str(src), "--output", str(out_file), "--threads", "1")
        expected[name] = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield {"inputs": inputs, "model": model, "expected": expected, "root": root}
    ray.shutdown()


def _check_output(out: Path, expected: dict[str, list[dict]]) -> None:  # type: ignore[type-arg]
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert len(manifest["inputs"]) == 4
    by_input = {Path(k).stem: v for k, v in manifest["inputs"].items()}
    got = list(read_shards(out))
    want = [d for name in sorted(by_input) for d in expected[name]]  # manifest order = sorted input paths
    assert len(got) == len(want) == sum(v["documents"] for v in by_input.values())
    assert len({d.id for d in got}) == len(got)  # exactly once
    for g, w in zip(got, want):
        assert g.id == w["id"] and g.text == w["text"]
        assert _spans(g) == _spans(w), g.id


def test_ray_output_equals_single_process_predict(corpus: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    out = tmp_path / "out"
    result = tag_corpus(corpus["model"], [str(corpus["inputs"] / "*")], out, workers=2, batch_docs=32,
                        progress=False)
    total = sum(len(v) for v in corpus["expected"].values())
    assert total >= 2000
    assert (result.tagged_inputs, result.skipped_inputs, result.documents) == (4, 0, total)
    assert result.spans == sum(len(d["spans"]) for v in corpus["expected"].values() for d in v) > 0
    assert result.sentences > total  # three sentences a document, give or take the splitter
    _check_output(out, corpus["expected"])
    # scores travel too (CRF span probabilities), equal to predict's to float precision
    first = json.loads(next(iter(sorted(out.glob("BC5CDR-*.jsonl")))).read_text().splitlines()[0])
    want = corpus["expected"]["BC5CDR"][0]
    for s, w in zip(first["spans"], want["spans"]):
        assert s["score"] == pytest.approx(w["score"], abs=1e-5)

    # a rerun after deleting one shard recomputes that input only, to the same output
    shard = next(out.glob("NCBI-disease-*.jsonl"))
    before = shard.read_text(encoding="utf-8")
    shard.unlink()
    again = tag_corpus(corpus["model"], [str(corpus["inputs"] / "*")], out, workers=2, batch_docs=32, progress=False)
    assert (again.tagged_inputs, again.skipped_inputs) == (1, 3)
    assert again.documents == len(corpus["expected"]["NCBI-disease"])
    assert [_spans(json.loads(x)) for x in shard.read_text().splitlines()] == \
        [_spans(json.loads(x)) for x in before.splitlines()]
    _check_output(out, corpus["expected"])
    # and a rerun with nothing to do does nothing
    idle = tag_corpus(corpus["model"], [str(corpus["inputs"] / "*")], out, progress=False)
    assert (idle.tagged_inputs, idle.skipped_inputs, idle.documents) == (0, 4, 0)


def _kill_an_actor(out: Path, killed: list[int]) -> None:
    """SIGKILL one tagger actor's process once the first shard is on disk (mid-run)."""
    deadline = time.time() + 300
    while time.time() < deadline and not killed:
        if (out / MANIFEST).exists():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"MapBatches(TagActor)" in cmd:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
        time.sleep(0.05)


def test_killed_actor_still_gives_complete_duplicate_free_output(corpus: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    out = tmp_path / "out"
    killed: list[int] = []
    killer = threading.Thread(target=_kill_an_actor, args=(out, killed), daemon=True)
    killer.start()
    result = tag_corpus(corpus["model"], [str(corpus["inputs"] / "*")], out, workers=2, batch_docs=16, progress=False)
    killer.join(timeout=1)
    assert killed, "no tagger actor was found to kill"
    assert result.tagged_inputs == 4
    _check_output(out, corpus["expected"])


def test_parquet_shards_hold_spans_as_a_list_of_structs(corpus: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    tag_corpus(corpus["model"], [str(corpus["inputs"] / "BC2GM.txt")], out, fmt="parquet", workers=1, progress=False)
    table = pq.read_table(next(out.glob("*.parquet")))
    assert str(table.schema.field("spans").type).startswith("list<element: struct<start: int64, end: int64, label: string")
    got = table.to_pylist()
    assert [_spans(r) for r in got] == [_spans(d) for d in corpus["expected"]["BC2GM"]]
    with pytest.raises(BionerError, match="holds parquet shards"):
        tag_corpus(corpus["model"], [str(corpus["inputs"] / "BC2GM.txt")], out, fmt="jsonl", progress=False)


def test_bad_inputs_are_refused_with_file_and_line(corpus: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Aspirin."}\n{"id": "b", "text": 3}\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"bad.jsonl:2: 'text' must be a string"):
        tag_corpus(corpus["model"], [str(bad)], tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("*.jsonl"))  # nothing half-written
    with pytest.raises(InputError, match="matches no file"):
        tag_corpus(corpus["model"], [str(tmp_path / "none-*.jsonl")], tmp_path / "out2", progress=False)
    with pytest.raises(InputError, match="lies inside the output folder"):
        tag_corpus(corpus["model"], [str(bad)], tmp_path, progress=False)
    other = tiny_run_folder(tmp_path / "other-run", LABELS, seed=7)
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "text": "Aspirin causes ulcers."}\n', encoding="utf-8")
    tag_corpus(corpus["model"], [str(good)], tmp_path / "out3", progress=False)
    with pytest.raises(BionerError, match="tagged with another model"):
        tag_corpus(other, [str(good)], tmp_path / "out3", progress=False)


def test_cli_prints_the_final_line(corpus: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Joins the fixture's running Ray through --address (as a user joins a cluster)."""
    address = ray.get_runtime_context().gcs_address
    proc = bioner("tag-corpus", "--model", str(corpus["model"]), "--input", str(corpus["inputs"] / "BC2GM.txt"),
                  "--output", str(tmp_path / "out"), "--workers", "1", "--batch-docs", "100", "--address", address)
    n = len(corpus["expected"]["BC2GM"])
    assert f"tagged {n} documents" in proc.stdout and "documents/s" in proc.stdout
    bad = bioner("tag-corpus", "--model", str(corpus["model"]), "--input", str(tmp_path / "x*.jsonl"),
                 "--output", str(tmp_path / "o"), check=False)
    assert bad.returncode == 1 and "matches no file" in bad.stderr


# ---------------------------------------------------------------- torch.distributed training


def test_train_on_two_processes(tmp_path: Path) -> None:
    """2 processes × 1 thread (gloo): runs, the loss falls, the ranks end every epoch with
    bit-identical weights, rank 0 leaves a complete run folder that loads."""
    from bioner.models import load_tagger

    run = tmp_path / "run"
    proc = bioner("train", "--dataset", "sample", "--limit-train", "240", "--limit-eval", "60", "--epochs", "2",
                  "--threads", "1", "--nproc", "2", "--out", str(run), "train.batch_size=8")
    assert proc.stdout.count("run folder:") == 1  # only rank 0 reports
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["processes"] for r in records] == [2, 2]
    assert all(r["ranks_identical_weights"] is True for r in records)
    assert records[0]["effective_batch_size"] == 16
    assert records[-1]["train_loss"] < records[0]["train_loss_first_quarter"]
    assert records[0]["steps"] == 15  # 240 sentences, 8 a batch: 30 batches, 15 steps on each rank
    for name in ("config.yaml", "eval_test.json", "model/tagger.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    assert "processes: 2" in (run / "config.yaml").read_text()
    tagger = load_tagger(run)
    assert len(tagger.predict([["Aspirin", "causes", "ulcers", "."]])[0]) == 4
