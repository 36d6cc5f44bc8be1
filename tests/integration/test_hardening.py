"""Bad input and faults, thrown at the real CLI as a hostile user would.

Every case asserts three things: the exit code, a message that names the file and line (or the
offending value), and that every input file is byte-identical afterwards.  Most cases run the
CLI in this process (one import of torch for all); the few that need a real process (signals,
raw bytes in argv, a hidden package) start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from bioner.cli import main
from tests.helpers import corpus_texts, tiny_decoder_folder, tiny_run_folder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
CONLL = "Aspirin\tB-Chemical\ninduced\tO\nasthma\tB-Disease\n.\tO\n\nNo\tO\neffect\tO\n.\tO\n"
PUBTATOR = "7|t|Aspirin induced asthma.\n7|a|No effect.\n7\t0\t7\tAspirin\tChemical\n\n"


def run_cli(*args: str) -> tuple[int, str]:
    """``bioner ARGS`` in this process: (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch.object(sys, "argv", ["bioner", *args]), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue() + err.getvalue()


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run_folder(tmp_path_factory.mktemp("run"), LABELS)


@dataclass
class Case:
    name: str
    setup: Callable[[Path, Path], list[str]]  # (case folder, run folder) -> CLI args
    code: int
    says: tuple[str, ...]  # all must appear in the output ({d} = the case folder)


def _copy_run(d: Path, run: Path) -> Path:
    target = d / "run"
    shutil.copytree(run, target)
    return target


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = change(raw)
    path.write_text(json.dumps(raw if out is None else out), encoding="utf-8")


# ------------------------------------------------------------------ the cases


def _auto_map(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    _edit_json(r / "model" / "config.json", lambda c: c.update(auto_map={"AutoModelForTokenClassification": "evil.Model"}))
    _write(r / "model" / "evil.py", "raise SystemExit('foreign code ran')\n")
    return ["predict", "--model", str(r), "--text", "Aspirin."]


def _auto_map_folder_asks_trust(d: Path, run: Path) -> list[str]:
    args = _auto_map(d, run)
    _edit_json(d / "run" / "model" / "tagger.json", lambda m: m.update(trust_remote_code=True))
    return args


def _pickle_only(d: Path, run: Path) -> list[str]:
    import torch
    from safetensors.torch import load_file

    r = _copy_run(d, run)
    weights = load_file(str(r / "model" / "model.safetensors"))
    (r / "model" / "model.safetensors").unlink()
    torch.save(weights, r / "model" / "pytorch_model.bin")
    return ["predict", "--model", str(r), "--text", "Aspirin."]


def _spec(d: Path, body: str) -> list[str]:
    return ["experiment", "status", str(_write(d / "spec.yaml", body))]


SPEC_HEAD = "name: x\nout: out\n"


def _labels_rotated(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    _edit_json(r / "model" / "labels.json", lambda labels: labels[1:] + labels[:1])
    return ["predict", "--model", str(r), "--text", "Aspirin induced asthma."]


def _labels_truncated(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    _edit_json(r / "model" / "labels.json", lambda labels: labels[:3])
    return ["predict", "--model", str(r), "--text", "Aspirin."]


def _labels_renamed(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    _edit_json(r / "model" / "labels.json", lambda labels: ["O", "B-Disease", "I-Disease", "B-Gene", "I-Gene"])
    return ["predict", "--model", str(r), "--text", "Aspirin."]


def _garbage(name: str, content: str) -> Callable[[Path, Path], list[str]]:
    def setup(d: Path, run: Path) -> list[str]:
        r = _copy_run(d, run)
        _write(r / "model" / name, content)
        return ["predict", "--model", str(r), "--text", "Aspirin."]
    return setup


def _truncated_weights(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    w = r / "model" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 3])
    return ["predict", "--model", str(r), "--text", "Aspirin."]


def _corrupt_onnx(d: Path, run: Path) -> list[str]:
    r = _copy_run(d, run)
    _write(r / "model" / "model.onnx", b"not an onnx graph")
    return ["predict", "--model", str(r), "--text", "Aspirin.", "--backend", "onnx"]


def _same_io(d: Path, run: Path) -> list[str]:
    f = _write(d / "x.jsonl", json.dumps({"id": "a", "text": "Aspirin induced asthma."}) + "\n")
    return ["predict", "--model", str(run), "--input", str(f), "--output", str(f)]


def _same_io_alias(d: Path, run: Path) -> list[str]:
    f = _write(d / "x.jsonl", json.dumps({"id": "a", "text": "Aspirin induced asthma."}) + "\n")
    os.symlink(f, d / "link.jsonl")
    return ["predict", "--model", str(run), "--input", str(f), "--output", str(d / "link.jsonl")]


def _convert_same(d: Path, run: Path) -> list[str]:
    f = _write(d / "a.pubtator", PUBTATOR)
    return ["data", "convert", str(f), str(f)]


def _evaluate_over_gold(d: Path, run: Path) -> list[str]:
    g = _write(d / "gold.conll", CONLL)
    p = _write(d / "pred.conll", CONLL)
    return ["evaluate", "--gold", str(g), "--pred", str(p), "--output", str(g)]


def _output_under_a_file(d: Path, run: Path) -> list[str]:
    g = _write(d / "gold.conll", CONLL)
    p = _write(d / "pred.conll", CONLL)
    blocker = _write(d / "blocker", "a file, not a folder")
    return ["evaluate", "--gold", str(g), "--pred", str(p), "--output", str(blocker / "report.json")]


def _conll_pair(d: Path) -> tuple[str, str]:
    return str(_write(d / "gold.conll", CONLL)), str(_write(d / "pred.conll", CONLL))


def _cr_only(d: Path, run: Path) -> list[str]:
    return ["data", "validate", str(_write(d / "mac.conll", CONLL.replace("\n", "\r")))]


def _convert(name: str, content: str | bytes, *extra: str) -> Callable[[Path, Path], list[str]]:
    def setup(d: Path, run: Path) -> list[str]:
        src = _write(d / name, content)
        return ["data", "convert", str(src), str(d / "out.conll"), *extra]
    return setup


def _brat(ann: str) -> Callable[[Path, Path], list[str]]:
    def setup(d: Path, run: Path) -> list[str]:
        _write(d / "brat" / "doc.txt", "Aspirin induced asthma.")
        _write(d / "brat" / "doc.ann", ann)
        return ["data", "convert", str(d / "brat"), str(d / "out.conll"), "--from", "brat"]
    return setup


BIOC_HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n<collection><source>x</source><date/><key/>\n"


def _bioc(passage_offset: int, ann_offset: int) -> str:
    return (BIOC_HEAD + f"<document><id>d1</id>\n<passage><offset>{passage_offset}</offset><text>Aspirin induced"
            f" asthma.</text>\n<annotation id=\"A1\"><infon key=\"type\">Chemical</infon>"
            f"<location offset=\"{ann_offset}\" length=\"7\"/><text>Aspirin</text></annotation>\n"
            "</passage></document></collection>\n")


def _train(d: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "sample", "--out", str(d / "out"), *extra]


def _locked_run(d: Path, run: Path) -> list[str]:
    out = d / "out"
    out.mkdir()
    handle = open(out / ".lock", "a+")  # held by "another process" (another open file description)
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write("pid 4242\n")
    handle.flush()
    _HELD.append(handle)
    return ["train", "--dataset", "sample", "--out", str(out), "--epochs", "1"]


_HELD: list = []  # type: ignore[type-arg]


def _fetch_force_fails(d: Path, run: Path) -> list[str]:
    data = d / "data"
    for split in ("train", "dev", "test"):
        _write(data / "BC5CDR" / f"{split}.txt", CONLL)
    mirror = d / "mirror" / "BC5CDR-IOB"  # a local copy whose train split is fine and dev is broken
    _write(mirror / "train.tsv", "Aspirin\tB-Chemical\n\n")
    _write(mirror / "devel.tsv", "Aspirin\tB-Chemical\nasthma\n")
    _write(mirror / "test.tsv", "Aspirin\tB-Chemical\n\n")
    return ["data", "fetch", "BC5CDR", "--data-dir", str(data), "--from-file", str(d / "mirror"), "--force"]


def _gen_run(d: Path, run: Path) -> Path:
    from bioner.corpus.conll import read_conll
    from bioner.models.folder import TaggerMeta, write_tagger_files

    sample = Path(__file__).parents[2] / "src" / "bioner" / "data" / "sample" / "train.txt"
    folder = tiny_decoder_folder(d / "gen" / "model", "llama", corpus_texts(list(read_conll(sample))[:20]))
    write_tagger_files(folder, LABELS, TaggerMeta(kind="llm-gen"))
    return d / "gen"


def _export_gen(d: Path, run: Path) -> list[str]:
    return ["export", "--model", str(_gen_run(d, run)), "--onnx"]


def _bench_gen(d: Path, run: Path) -> list[str]:
    return ["bench", "--model", str(_gen_run(d, run)), "--dataset", "sample", "--reference-loop"]


CASES = [
    # security: nothing in a folder switches on code execution
    Case("auto_map in config.json", _auto_map, 1, ("config.json", "auto_map", "--trust-remote-code")),
    Case("tagger.json asks for trust_remote_code", _auto_map_folder_asks_trust, 1, ("auto_map", "--trust-remote-code")),
    Case("pickled weights only", _pickle_only, 1, ("pytorch_model.bin", "--allow-pickle")),
    Case("spec tagger named ..", lambda d, r: _spec(d, SPEC_HEAD + "datasets: [sample]\ntaggers: [{name: '..'}]\n"),
         1, ("taggers.0.name",)),
    Case("spec tagger name with a separator", lambda d, r: _spec(d, SPEC_HEAD + "datasets: [sample]\ntaggers: [{name: 'a/b'}]\n"),
         1, ("taggers.0.name",)),
    Case("spec datasets sharing a folder", lambda d, r: _spec(d, SPEC_HEAD + "datasets: [/a/BC5CDR, /b/BC5CDR]\n"
                                                              "taggers: [{name: m}]\n"), 1, ("datasets.1", "/b/BC5CDR", "BC5CDR")),
    Case("spec dataset named ..", lambda d, r: _spec(d, SPEC_HEAD + "datasets: ['..']\ntaggers: [{name: m}]\n"),
         1, ("datasets.0", "'..'")),
    Case("spec override with a bad value", lambda d, r: _spec(d, SPEC_HEAD + "datasets: [sample]\ntaggers: [{name: m, "
                                                              "overrides: ['train.lr=-1']}]\n"), 1, ("taggers.0 (m)", "train.lr")),
    Case("spec override with an unknown key", lambda d, r: _spec(d, SPEC_HEAD + "datasets: [sample]\ntaggers: [{name: m, "
                                                                 "overrides: ['train.lrr=1']}]\n"), 1, ("train.lrr",)),
    # no data loss
    Case("predict output = input", _same_io, 1, ("x.jsonl", "also an input")),
    Case("predict output = input through a link", _same_io_alias, 1, ("link.jsonl", "also an input")),
    Case("convert output = input", _convert_same, 1, ("a.pubtator", "also an input")),
    Case("evaluate --output over the gold file", _evaluate_over_gold, 1, ("gold.conll", "also an input")),
    Case("output folder is a file", _output_under_a_file, 1, ("blocker",)),
    Case("a second writer of a run folder", _locked_run, 1, ("pid 4242", "being written")),
    Case("fetch --force that fails midway keeps the old splits", _fetch_force_fails, 1, ("devel.tsv", ":2")),
    # wrong results with exit 0 before
    Case("train.lr=inf", lambda d, r: _train(d, "train.lr=inf"), 1, ("train.lr",)),
    Case("train.lr=nan", lambda d, r: _train(d, "train.lr=nan"), 1, ("train.lr",)),
    Case("train --threads 0", lambda d, r: _train(d, "--threads", "0"), 1, ("train.threads",)),
    Case("evaluate --limit -1", lambda d, r: ["evaluate", "--gold", *_conll_pair(d)[:1], "--pred", _conll_pair(d)[1],
                                              "--limit", "-1"], 2, ("--limit", "-1")),
    Case("evaluate --bootstrap -5", lambda d, r: ["evaluate", "--gold", _conll_pair(d)[0], "--pred", _conll_pair(d)[1],
                                                  "--bootstrap", "-5"], 2, ("--bootstrap", "-5")),
    Case("evaluate --resamples 0", lambda d, r: ["evaluate", "--gold", _conll_pair(d)[0], "--pred", _conll_pair(d)[1],
                                                 "--pred", _conll_pair(d)[1], "--paired", "--resamples", "0"], 2, ("--resamples", "0")),
    Case("predict --threads 0", lambda d, r: ["predict", "--model", str(r), "--text", "x", "--threads", "0"], 2, ("--threads", "0")),
    Case("predict --threads -1", lambda d, r: ["predict", "--model", str(r), "--text", "x", "--threads", "-1"], 2, ("--threads", "-1")),
    Case("CR-only line ends", _cr_only, 1, ("mac.conll:1", "carriage return")),
    Case("PubTator negative offset", _convert("n.pubtator", PUBTATOR.replace("\t0\t7\t", "\t-3\t7\t")), 1,
         ("n.pubtator:3", "-3")),
    Case("PubTator offset past the text", _convert("p.pubtator", PUBTATOR.replace("\t0\t7\t", "\t0\t700\t")), 1,
         ("p.pubtator:3", "700")),
    Case("PubTator annotation without a title", _convert("t.pubtator", "7\t0\t7\tAspirin\tChemical\n"), 1, ("t.pubtator:1",)),
    Case("brat offset past the text", _brat("T1\tChemical 0 900\tAspirin\n"), 1, ("doc.ann:1", "900")),
    Case("brat line with missing fields", _brat("T1\tChemical 0 7\n"), 1, ("doc.ann:1",)),
    Case("brat negative offset", _brat("T1\tChemical -4 7\tAspirin\n"), 1, ("doc.ann:1", "-4")),
    Case("BioC passage offset of gigabytes", _convert("big.xml", _bioc(4_000_000_000, 4_000_000_000)), 1,
         ("big.xml", "d1", "corrupt")),
    Case("BioC annotation past the text", _convert("ann.xml", _bioc(0, 500)), 1, ("ann.xml:", "A1", "500")),
    Case("BioC negative annotation offset", _convert("neg.xml", _bioc(0, -2)), 1, ("neg.xml:", "-2")),
    Case("XML that is not BioC", _convert("x.xml", "<?xml version='1.0'?>\n<html><body/></html>\n"), 1,
         ("x.xml:2", "<html>")),
    Case("JSONL text that is not a string", _convert("t.jsonl", '{"id": "a", "text": 42}\n'), 1, ("t.jsonl:1", "'text'")),
    Case("JSONL span start that is a string", _convert("s.jsonl", '{"id": "a", "text": "Aspirin", "spans": '
                                                       '[{"start": "0", "end": 7, "label": "C"}]}\n'), 1, ("s.jsonl:1", "spans[0]")),
    Case("JSONL with non-UTF-8 bytes", _convert("u.jsonl", b'{"id": "a", "text": "\xff"}\n'), 1, ("u.jsonl:1", "UTF-8")),
    Case("convert --overlap bogus", _convert("o.pubtator", PUBTATOR, "--overlap", "bogus"), 1, ("bogus",)),
    Case("labels.json rotated", _labels_rotated, 1, ("labels.json",)),
    Case("labels.json truncated", _labels_truncated, 1, ("labels.json",)),
    Case("labels.json renamed types", _labels_renamed, 1, ("config.json", "labels.json")),
    # crashes that are messages now
    Case("garbage labels.json", _garbage("labels.json", "[\"O\", \"B-Chem"), 1, ("labels.json:1",)),
    Case("garbage tagger.json", _garbage("tagger.json", "{kind: encoder"), 1, ("tagger.json:1",)),
    Case("tagger.json with an unknown kind", _garbage("tagger.json", '{"kind": "magic"}'), 1, ("tagger.json", "kind")),
    Case("truncated safetensors", _truncated_weights, 1, ("run/model", "damaged")),
    Case("corrupt .onnx", _corrupt_onnx, 1, ("model.onnx",)),
    Case("malformed --sha256 (no =)", lambda d, r: ["data", "fetch", "BC5CDR", "--data-dir", str(d), "--sha256", "abc"],
         1, ("--sha256", "'abc'")),
    Case("malformed --sha256 (not hex)", lambda d, r: ["data", "fetch", "BC5CDR", "--data-dir", str(d), "--sha256",
                                                       "train=xyz"], 1, ("train=xyz", "64 hexadecimal")),
    Case("unknown preset inside a config file", lambda d, r: _train(d, "--config", str(_write(d / "c.yaml", "preset: gpu\n"))),
         1, ("c.yaml", "'gpu'")),
    Case("export an llm-gen run to ONNX", _export_gen, 1, ("llm-gen",)),
    Case("bench --reference-loop on an llm-gen run", _bench_gen, 1, ("--reference-loop", "llm-gen")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_named_and_nothing_is_touched(case: Case, run: Path, tmp_path: Path) -> None:
    args = case.setup(tmp_path, run)
    before = snapshot(tmp_path)
    try:
        code, output = run_cli(*args)
    finally:
        while _HELD:
            _HELD.pop().close()
    assert code == case.code, output
    for needle in case.says:
        assert needle.format(d=tmp_path) in output, f"{needle!r} not in:\n{output}"
    assert "bioner bug" not in output
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "an input file changed"
    assert not [k for k in after if k not in before and k.endswith(".tmp")], "a temporary file was left"


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


# ------------------------------------------------------------------ cases that need their own process


def _proc(*args: str | bytes, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bioner", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def test_invalid_utf8_in_text_is_refused(run: Path) -> None:
    proc = _proc("predict", "--model", str(run), "--text", b"Aspirin \xff\xfe induced")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert b"--text is not valid UTF-8" in err


def test_ctrl_c_exits_130_and_leaves_no_output(tmp_path: Path) -> None:
    fifo = tmp_path / "in.pubtator"
    os.mkfifo(fifo)  # reading blocks until a writer comes: the command is mid-run when interrupted
    out = tmp_path / "out.conll"
    _write(out, "the previous output\n")
    proc = _proc("data", "convert", str(fifo), str(out))
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert out.read_text(encoding="utf-8") == "the previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pubtator", "out.conll"]


def test_stray_onnx_without_onnxruntime_falls_back_to_torch(run: Path, tmp_path: Path) -> None:
    r = _copy_run(tmp_path, run)
    _write(r / "model" / "model.onnx", b"an export from a machine with onnxruntime")
    hide = _write(tmp_path / "hide" / "onnxruntime" / "__init__.py", "raise ImportError('hidden for this test')\n")
    proc = _proc("predict", "--model", str(r), "--text", "Aspirin induced asthma.",
                 env={"PYTHONPATH": f"{hide.parent.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert b"onnxruntime is not installed; using torch" in err
    assert json.loads(out)["text"] == "Aspirin induced asthma."


def test_predict_text_output_writes_the_file_in_the_documents_shape(run: Path, tmp_path: Path) -> None:
    code, output = run_cli("predict", "--model", str(run), "--text", "Aspirin induced asthma.",
                           "--output", str(tmp_path / "t.jsonl"))
    assert code == 0, output
    record = json.loads((tmp_path / "t.jsonl").read_text(encoding="utf-8"))
    assert set(record) == {"id", "text", "spans"} and record["text"] == "Aspirin induced asthma."
