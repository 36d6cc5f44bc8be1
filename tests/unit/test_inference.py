"""Inference paths give the same tags: batched vs one by one, padded to 512, ONNX."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bioner.bench.cost import agreement, cpu_peak_flops, measure
from bioner.models import load_tagger
from bioner.models.encoder_tagger import EncoderTagger
from tests.helpers import bioner, tiny_run_folder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def sentences(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    words = ["aspirin", "induced", "renal", "failure", "in", "rats", "(", "p", "<", "0.05", ")", "."]
    return [[rng.choice(words) for _ in range(rng.randint(1, 90))] for _ in range(n)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run_folder(tmp_path_factory.mktemp("run"), LABELS)


def test_batched_one_by_one_and_reference_padding_agree(run: Path) -> None:
    # fp32: padding and batching change nothing there (bf16 rounding can flip a near-tie)
    tagger = load_tagger(run, backend="torch", precision="fp32")
    assert isinstance(tagger, EncoderTagger)
    sents = sentences(40)
    batched = tagger.predict(sents)
    assert [len(t) for t in batched] == [len(s) for s in sents]
    single = [tagger.predict([s])[0] for s in sents]
    ref = tagger.reference_loop()
    assert (ref.batch_size, ref.pad_to) == (1, 512)
    assert agreement(batched, single) == 1.0
    assert agreement(batched, ref.predict(sents)) == 1.0


def test_onnx_export_fp32_and_int8(run: Path) -> None:
    bioner("export", "--model", str(run), "--onnx", "--int8")
    assert (run / "model" / "model.onnx").is_file() and (run / "model" / "model.int8.onnx").is_file()
    import onnx

    ops = {n.op_type for n in onnx.load(str(run / "model" / "model.onnx")).graph.node}
    assert {"Attention", "BiasGelu"} <= ops and "SkipLayerNormalization" not in ops, ops  # ORT's fusions
    int8_nodes = onnx.load(str(run / "model" / "model.int8.onnx")).graph.node
    assert [n.op_type for n in int8_nodes if n.op_type in ("MatMul", "Gemm")] == ["MatMul"]  # classifier kept fp32
    sents = sentences(30, seed=1)
    torch_tags = load_tagger(run, backend="torch", precision="fp32").predict(sents)  # ONNX runs fp32
    fp32 = load_tagger(run, backend="onnx-fp32")
    assert fp32.report_extra()["backend"] == "onnx:model.onnx"
    assert fp32.predict(sents) == torch_tags
    int8 = load_tagger(run)  # auto picks the int8 export up
    assert int8.report_extra()["backend"] == "onnx:model.int8.onnx"
    assert agreement(torch_tags, int8.predict(sents)) > 0.9


def test_onnx_export_of_a_word_shape_model_reads_casing(tmp_path: Path) -> None:
    import torch

    run = tiny_run_folder(tmp_path, LABELS, crf=True, word_shape=True)
    table = load_tagger(run, backend="torch").model.backbone.bert.embeddings.token_type_embeddings
    with torch.no_grad():  # make casing matter, as training would
        table.weight.normal_(0, 1.0)
    from safetensors.torch import load_file, save_file

    weights = load_file(run / "model" / "model.safetensors")
    key = next(k for k in weights if k.endswith("token_type_embeddings.weight"))
    weights[key] = table.weight.detach().clone()
    save_file(weights, run / "model" / "model.safetensors", metadata={"format": "pt"})
    bioner("export", "--model", str(run), "--onnx")
    sents = [[w.upper() if k % 3 == 0 else w.capitalize() if k % 3 == 1 else w for k, w in enumerate(s)]
             for s in sentences(30, seed=2)]
    torch_tags = load_tagger(run, backend="torch").predict(sents)
    assert load_tagger(run, backend="onnx-fp32").predict(sents) == torch_tags
    lower = load_tagger(run, backend="torch").predict([[w.lower() for w in s] for s in sents])
    assert lower != torch_tags  # the casing classes reach the model


def test_measure_reports_every_figure(run: Path) -> None:
    tagger = load_tagger(run, backend="torch")
    assert isinstance(tagger, EncoderTagger)
    cost = measure(tagger, sentences(50), repeats=2, latency_samples=10)
    assert cost.n_sentences == 50 and cost.n_words == sum(len(s) for s in sentences(50))
    assert cost.sentences_per_s > 0 and cost.latency_p95_ms >= cost.latency_p50_ms > 0
    assert cost.params_total == cost.params_trainable > 0
    assert cost.peak_rss_mb > 0 and cost.achieved_flops_per_s > 0


def test_bench_cli_json(run: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "test.txt").write_text("aspirin\tB-Chemical\ninduced\tO\nfailure\tB-Disease\n\n" * 30,
                                   encoding="utf-8")
    out = json.loads(bioner("bench", "--model", str(run), "--dataset", str(data), "--repeats", "1",
                            "--reference-loop", "--reference-limit", "5", "--backend", "torch",
                            "--precision", "fp32", "--format", "json").stdout)
    assert out["n_sentences"] == 30 and out["backend"] == "torch"
    assert out["extra"]["tag_agreement_with_reference"] == 1.0
    assert out["extra"]["speedup_vs_reference"] > 0  # a figure is reported; the bar lives in bench/
    assert out["kind"] == "encoder" and out["precision"] == "fp32"


def _cpuinfo(vendor: str, family: int, flags: str) -> str:
    first = f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\ncpu MHz\t\t: 2000.000\nflags\t\t: {flags}\n"
    return first + "\nprocessor\t: 1\nvendor_id\t: other\ncpu MHz\t\t: 9999.0\nflags\t\t: \n"


@pytest.mark.parametrize(("vendor", "family", "flags", "precision", "per_cycle"), [
    ("GenuineIntel", 6, "fma avx2 avx512f", "fp32", 64),
    ("AuthenticAMD", 25, "fma avx2 avx512f avx512_bf16", "fp32", 32),  # Zen 4: 256-bit units
    ("AuthenticAMD", 25, "fma avx2 avx512f avx512_bf16", "bf16", 64),
    ("AuthenticAMD", 26, "fma avx2 avx512f avx512_bf16", "fp32", 64),  # Zen 5: full width
    ("AuthenticAMD", 23, "fma avx2", "fp32", 32),
    ("GenuineIntel", 6, "sse2", "fp32", 8),
])
def test_cpu_peak_reads_the_first_processor(vendor: str, family: int, flags: str, precision: str,
                                           per_cycle: int) -> None:
    peak, basis = cpu_peak_flops(2, precision, _cpuinfo(vendor, family, flags))
    assert peak == 2 * per_cycle * 2000e6
    assert f"{per_cycle} {precision} FLOP/cycle" in basis


def test_cpu_peak_states_no_bf16_peak_it_cannot_back() -> None:
    assert cpu_peak_flops(2, "bf16", _cpuinfo("GenuineIntel", 6, "fma avx2 avx512f"))[0] is None
    assert cpu_peak_flops(2, "bf16", _cpuinfo("GenuineIntel", 6, "avx512f avx512_bf16 amx_bf16"))[0] is None
    assert cpu_peak_flops(2, "fp32", "")[0] is None


def test_forward_flops_leave_embedding_lookups_out(run: Path) -> None:
    tagger = load_tagger(run)
    backbone = tagger.model.backbone
    config = backbone.config
    lengths = [len(w) for w in tagger.encoder().encode_many([["a", "b"]])]
    weights = sum(p.numel() for p in backbone.parameters())
    flops = tagger.forward_flops([["a", "b"]])
    attention = 4.0 * config.num_hidden_layers * config.hidden_size * sum(n * n for n in lengths)
    assert 0 < flops - attention < 2.0 * weights * sum(lengths)


def test_one_crf_pass_over_many_batches_gives_what_a_pass_per_batch_gives(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRF decodes and scores several model batches in one pass; rows must not notice."""
    from bioner.models import encoder_tagger

    tagger = load_tagger(tiny_run_folder(tmp_path, LABELS, crf=True, seed=5), backend="torch", precision="fp32")
    assert isinstance(tagger, EncoderTagger)
    tagger.max_tokens = 256  # many small model batches
    sents = sentences(60, seed=2)
    passes: list[int] = []
    real_pass = EncoderTagger._crf_pass
    monkeypatch.setattr(EncoderTagger, "_crf_pass", lambda self, pending, *a: (passes.append(len(pending)),
                                                                                 real_pass(self, pending, *a))[1])
    results = {}
    for cells in (1, 10**9):
        monkeypatch.setattr(encoder_tagger, "CRF_CELLS", cells)
        passes.clear()
        results[cells] = (tagger.predict_with_scores(sents), tagger.predict(sents), list(passes))
    (tags_1, scores_1), plain_1, passes_1 = results[1]
    (tags_all, scores_all), plain_all, passes_all = results[10**9]
    assert set(passes_1) == {1} and len(passes_1) > 5 and passes_all == [len(passes_1) // 2] * 2
    assert tags_all == tags_1 == plain_all == plain_1
    assert scores_1 is not None and scores_all is not None and any(scores_1)
    assert [s.keys() for s in scores_all] == [s.keys() for s in scores_1]
    for a, b in zip(scores_all, scores_1):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9)


def test_settle_heap_takes_what_is_alive_out_of_the_collectors_view() -> None:
    import gc

    from bioner.models.runtime import settle_heap

    cycle: list[object] = []
    cycle.append(cycle)  # garbage once dropped: settle_heap collects it before freezing
    del cycle
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > before
        assert gc.collect() == 0  # nothing left for a full collection to find
    finally:
        gc.unfreeze()
