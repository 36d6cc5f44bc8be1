"""LLM taggers through the CLI on tiny random decoders: they learn, and they round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bioner.corpus.conll import load_conll, write_conll
from bioner.corpus.datasets import sample_dir
from tests.helpers import bioner, corpus_texts, dataset_split, tiny_decoder_folder


def test_llm_cls_learns_on_a_few_hundred_bc5cdr_sentences(data_dir: Path, tmp_path: Path) -> None:
    """LoRA + a trained head on a random 2-layer Llama: the loss falls and dev strict F1 rises
    above the all-O baseline (F1 0)."""
    train = load_conll(dataset_split(data_dir, "BC5CDR", "train"))[:300]
    dev = load_conll(dataset_split(data_dir, "BC5CDR", "dev"))[:150]
    model = tiny_decoder_folder(tmp_path / "llama", "llama", corpus_texts(train + dev), hidden=128)
    out = tmp_path / "run"
    bioner("train", "--dataset", "BC5CDR", "--kind", "llm-cls", "--model", str(model), "--limit-train", "300",
           "--limit-eval", "150", "--epochs", "4", "--out", str(out), "train.lr=3e-3", "train.head_lr=1e-2",
           "train.batch_size=8", "train.patience=null", "train.warmup_ratio=0.05",
           env={"BIONER_DATA_DIR": str(data_dir)})
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1]["train_loss"] < 0.6 * epochs[0]["train_loss_first_quarter"]
    assert max(e["dev"]["strict"] for e in epochs) > 0.05
    assert epochs[-1]["dev"]["strict"] > epochs[0]["dev"]["strict"]
    test = json.loads((out / "eval_test.json").read_text())
    assert test["kind"] == "llm-cls" and test["overall"]["strict"]["f1"] > 0.0
    assert (out / "model" / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "model" / "model.safetensors").is_file()  # merged weights


@pytest.mark.parametrize("arch", ["qwen2"])
def test_llm_gen_trains_predicts_and_evaluates(arch: str, tmp_path: Path) -> None:
    sample = load_conll(sample_dir() / "train.txt")
    model = tiny_decoder_folder(tmp_path / arch, arch, corpus_texts(sample))
    out = tmp_path / "run"
    bioner("train", "--dataset", "sample", "--kind", "llm-gen", "--model", str(model), "--limit-train", "48",
           "--limit-eval", "8", "--epochs", "1", "--out", str(out), "train.lr=1e-3", "train.batch_size=8",
           "model.lora.r=8")
    test = json.loads((out / "eval_test.json").read_text())
    assert test["kind"] == "llm-gen" and test["constrained"] is True
    assert test["generation"]["mismatched_tokens"] == 0 and test["n_sentences"] == 8
    gold = tmp_path / "gold.conll"
    write_conll(load_conll(sample_dir() / "test.txt")[:5], gold)
    pred = tmp_path / "pred.conll"
    bioner("predict", "--model", str(out), "--input", str(gold), "--output", str(pred))
    assert [s.tokens for s in load_conll(pred)] == [s.tokens for s in load_conll(gold)]
    free = json.loads(bioner("evaluate", "--model", str(out), "--dataset", "sample", "--limit", "3",
                             "--format", "json", "--free-generation").stdout)
    assert free["kind"] == "llm-gen" and free["constrained"] is False
    assert set(free["generation"]) >= {"mismatched_tokens", "malformed_lines", "invalid_tags"}
