"""`bioner train / predict / evaluate --model` end to end on the embedded MiniLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bioner.corpus.conll import load_conll, write_conll
from bioner.models.sources import embedded_model_dir
from tests.helpers import bioner, dataset_split

SAMPLE = ["--dataset", "sample"]


def test_learning_on_a_few_hundred_bc5cdr_sentences(data_dir: Path, tmp_path: Path) -> None:
    """One epoch on 300 real sentences: the loss falls and dev/test strict F1 clear a floor
    far above the all-O baseline (F1 0)."""
    out = tmp_path / "run"
    env = {"BIONER_DATA_DIR": str(data_dir)}
    bioner("train", "--dataset", "BC5CDR", "--limit-train", "300", "--limit-eval", "200",
           "--epochs", "1", "--out", str(out), "train.lr=3e-4", env=env)
    (epoch,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epoch["train_loss_last_quarter"] < 0.6 * epoch["train_loss_first_quarter"]
    assert epoch["dev"]["strict"] > 0.35
    test = json.loads((out / "eval_test.json").read_text())
    assert test["overall"]["strict"]["f1"] > 0.35 and test["kind"] == "encoder"
    assert "ci" in test and test["n_sentences"] == 200
    for name in ("config.yaml", "model/model.safetensors", "model/labels.json", "model/tokenizer.json"):
        assert (out / name).is_file(), name
    config = (out / "config.yaml").read_text()
    assert "sha256" in config and "transformers" in config
    # predict writes one tag per token; evaluate --model gives the same numbers as eval_test.json
    gold = tmp_path / "gold.conll"
    write_conll(load_conll(dataset_split(data_dir, "BC5CDR", "test"))[:200], gold)
    pred_file = tmp_path / "pred.conll"
    bioner("predict", "--model", str(out), "--input", str(gold), "--output", str(pred_file))
    pred = load_conll(pred_file)
    assert [s.tokens for s in pred] == [s.tokens for s in load_conll(gold)]
    scored = json.loads(bioner("evaluate", "--gold", str(gold), "--pred", str(pred_file), "--format", "json").stdout)
    assert scored["overall"]["strict"]["f1"] == pytest.approx(test["overall"]["strict"]["f1"], abs=1e-12)
    again = json.loads(bioner("evaluate", "--model", str(out), "--dataset", "BC5CDR", "--limit", "200",
                              "--format", "json", env=env).stdout)
    assert again["overall"]["strict"]["f1"] == pytest.approx(test["overall"]["strict"]["f1"], abs=1e-12)


def _wait_for_mid_epoch_checkpoint(run: Path, proc: subprocess.Popen[bytes], timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = json.loads((run / "checkpoint" / "state.json").read_text())
            if state["epoch"] == 1 and state["step_in_epoch"] > 0:
                return state
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            raise AssertionError("training ended before it could be killed mid-epoch")
        time.sleep(0.05)
    raise AssertionError("no mid-epoch checkpoint appeared")


def test_resume_after_sigkill_gives_the_same_result(tmp_path: Path) -> None:
    """With EMA on, so the shadow weights must come back from the checkpoint too."""
    args = [*SAMPLE, "--limit-train", "64", "--limit-eval", "40", "--epochs", "3", "--crf",
            "train.batch_size=8", "train.checkpoint_every_steps=3", "train.lr=3e-4", "train.patience=null",
            "train.ema=0.99"]
    straight = tmp_path / "straight"
    bioner("train", *args, "--out", str(straight))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bioner", "train", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = _wait_for_mid_epoch_checkpoint(killed, proc)
    time.sleep(0.5)  # let it get further than the checkpoint, mid-step
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "eval_test.json").exists()
    assert state["step_in_epoch"] < 12
    refused = bioner("train", *args, "--out", str(killed), check=False)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    bioner("train", *args, "--out", str(killed), "--resume")

    def numbers(run: Path) -> tuple[list[dict], dict]:
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for e in epochs:
            e.pop("train_seconds")
            e.pop("train_tokens_per_s")  # timings
            assert e.pop("train_flops_per_s") > 0
        return epochs, json.loads((run / "eval_test.json").read_text())["overall"]

    assert numbers(killed) == numbers(straight)


def test_bad_inputs_get_clear_errors(tmp_path: Path) -> None:
    def fails(*args: str) -> str:
        proc = bioner(*args, check=False)
        assert proc.returncode == 1, proc.stdout
        assert "Traceback" not in proc.stderr
        return proc.stderr

    assert "does not exist" in fails("train", *SAMPLE, "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "r1"))
    no_tok = tmp_path / "no_tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tok / name).write_bytes((embedded_model_dir() / name).read_bytes())
    assert "tokenizer" in fails("train", *SAMPLE, "--model", str(no_tok), "--out", str(tmp_path / "r2"))
    train, dev, empty = tmp_path / "train.conll", tmp_path / "dev.conll", tmp_path / "empty.conll"
    train.write_text("aspirin\tB-Chemical\nworks\tO\n\n", encoding="utf-8")
    dev.write_text("ulcers\tB-Disease\n\n", encoding="utf-8")
    empty.write_text("\n\n", encoding="utf-8")
    msg = fails("train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "r3"))
    assert "the dev split has entity types the train split lacks: Disease" in msg
    assert "holds no sentences" in fails("train", "--train", str(empty), "--out", str(tmp_path / "r4"))
    assert "not found" in fails("train", "--dataset", "Reddit-Impacts", "--out", str(tmp_path / "r5"))
    assert "PRIVATE" in fails("train", "--dataset", "Reddit-Impacts", "--out", str(tmp_path / "r5"))
    assert "train.lr" in fails("train", *SAMPLE, "train.lr=-1", "--out", str(tmp_path / "r6"))
    assert "not a bioner model" in fails("predict", "--model", str(tmp_path), "--text", "a b")


def test_resume_with_another_label_set_is_refused(tmp_path: Path) -> None:
    train = tmp_path / "train.conll"
    train.write_text("aspirin\tB-Chemical\nworks\tO\n\n" * 8, encoding="utf-8")
    out = tmp_path / "run"
    bioner("train", "--train", str(train), "--epochs", "1", "--out", str(out))
    train.write_text("aspirin\tB-Drug\nworks\tO\n\n" * 8, encoding="utf-8")
    proc = bioner("train", "--train", str(train), "--epochs", "1", "--out", str(out), "--resume", check=False)
    assert proc.returncode == 1 and "was trained on labels" in proc.stderr
    proc = bioner("train", "--train", str(train), "--epochs", "2", "--out", str(out), "--resume", check=False)
    assert proc.returncode == 1 and "differs" in proc.stderr
