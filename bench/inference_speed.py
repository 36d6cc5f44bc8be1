#!/usr/bin/env python3
"""Inference speed benchmark on BC5CDR test with a MiniLM trained on BC5CDR.

Bars (2 CPU cores; issue 18 raised them from 10x and 2x):
  * bioner's torch path (fp32) >= 30x the reference-style loop (batch 1, padded to 512), same
    predictions.  Printed beside it: the most fp32 could give on this machine, the reference loop's
    FLOPs per sentence over what bioner's fp32 path would take at the stated peak (when that is
    under 30x, the bar cannot be met in fp32 without cutting FLOPs), and the speed-up of the path
    at the precision ``auto`` picks here (bf16 where the CPU has it) with its agreement;
  * its efficiency >= 0.70 of the stated fp32 peak (a measured fp32 GEMM roof is printed beside
    it, so the stated peak can be checked);
  * ONNX int8 >= 3x bioner's torch fp32 path, token agreement >= 99.5%, strict F1 within 0.5 points;
  * peak RSS for tagging the whole test set <= 1.5 GB;
  * bf16 (where the CPU has AMX or AVX512-BF16, or on CUDA): token agreement with fp32 >= 0.995 and strict F1
    within 0.3 points (the speed is reported, no bar).

    python bench/inference_speed.py [--model runs/bench-encoder-BC5CDR] [--reference-limit 300]

The model comes from `python bench/encoder_accuracy.py --dataset BC5CDR` (or any BC5CDR run
folder).  Prints a table and exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import have_run, print_table, use_shared_data

REPO = Path(__file__).resolve().parents[1]
BAR_REFERENCE, BAR_EFFICIENCY, BAR_INT8 = 30.0, 0.70, 3.0


def gemm_roof(dtype_name: str, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matrix product: what the cores really reach, to check the stated peak."""
    import time

    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):  # best of three rounds
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * repeats / best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "bench-encoder-BC5CDR")
    ap.add_argument("--reference-limit", type=int, default=300)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    use_shared_data()
    if not have_run(args.model):
        return 1
    from bioner.bench.cost import agreement, measure
    from bioner.cli import quiet_libraries
    from bioner.corpus.conll import load_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.evaluate import evaluate
    from bioner.models import load_tagger
    from bioner.models.encoder import forward_flops
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.onnx_backend import ONNX_INT8_FILE, export_onnx

    quiet_libraries()
    import torch

    from bioner.models.runtime import has_fast_bf16

    # 0. what the cores reach on a large matrix product, before any model or ONNX Runtime thread
    # pool is about (its threads spin after each run and would slow this down)
    torch.set_num_threads(args.threads)
    roof_fp32 = gemm_roof("float32")
    roof_bf16 = gemm_roof("bfloat16") if has_fast_bf16(torch.device("cpu")) else None
    test_path = resolve_dataset("BC5CDR").path("test")
    gold = load_conll(test_path)
    tokens = [s.tokens for s in gold]

    # 1. peak RSS of a separate process tagging the whole test set with the torch path
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "bioner", "predict", "--model", str(args.model), "--input",
                        str(test_path), "--output", str(Path(tmp) / "pred.conll"), "--backend", "torch", "--threads",
                        str(args.threads)], check=True, capture_output=True)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    # 2. torch fp32, bioner's path, on the whole test set
    torch_tagger = load_tagger(args.model, args.threads, backend="torch", precision="fp32")
    assert isinstance(torch_tagger, EncoderTagger)
    torch_cost = measure(torch_tagger, tokens, repeats=2, latency_samples=200)
    torch_tags = torch_tagger.predict(tokens)

    # 3. the reference loop on the first N sentences, against ours on the same sentences
    sample = tokens[: args.reference_limit]
    ref = torch_tagger.reference_loop()
    ref_cost = measure(ref, sample, repeats=1, latency_samples=0, warmup=4)
    ours_sample = measure(torch_tagger, sample, repeats=3, latency_samples=0)
    ref_tags = ref.predict(sample)
    ref_agree = agreement(ref_tags, torch_tagger.predict(sample))
    # FLOPs per sentence: the reference pads every window to 512 sub-words, bioner's path does not
    pad = torch_tagger.inference.reference_pad_to
    n_windows = len(torch_tagger.encoder().encode_many(sample))
    ref_flops = forward_flops(torch_tagger.model.backbone, pad * n_windows, pad * pad * n_windows) or 0.0
    ours_flops = torch_tagger.forward_flops(sample) or 0.0
    ref_rate = ref_flops * ref_cost.sentences_per_s / len(sample)  # FLOP/s the reference loop reaches
    # seconds a sentence the reference loop takes / seconds bioner's FLOPs would take at the stated peak
    bound = ((1 / ref_cost.sentences_per_s) / (ours_flops / len(sample) / ours_sample.peak_flops_per_s)
             if ours_flops and ours_sample.peak_flops_per_s else None)

    # 4. ONNX int8
    folder = args.model / "model"
    if not (folder / ONNX_INT8_FILE).is_file():
        export_onnx(torch_tagger.model.backbone, folder, int8=True, token_types=torch_tagger.shapes)
    onnx_tagger = load_tagger(args.model, args.threads, backend="onnx")
    assert isinstance(onnx_tagger, EncoderTagger)
    onnx_cost = measure(onnx_tagger, tokens, repeats=2, latency_samples=200)
    onnx_tags = onnx_tagger.predict(tokens)
    agree = agreement(torch_tags, onnx_tags)
    f1_torch = evaluate(gold, [type(s)(s.id, s.tokens, t) for s, t in zip(gold, torch_tags)]).overall["strict"].f1
    f1_onnx = evaluate(gold, [type(s)(s.id, s.tokens, t) for s, t in zip(gold, onnx_tags)]).overall["strict"].f1

    # 5. bf16 autocast (AMX or AVX512-BF16 on CPU), against fp32 on the same sentences
    bf16_row = None
    if has_fast_bf16(torch_tagger.device):
        bf16_tagger = load_tagger(args.model, args.threads, backend="torch", precision="bf16")
        bf16_cost = measure(bf16_tagger, tokens, repeats=2, latency_samples=0)
        bf16_tags = bf16_tagger.predict(tokens)
        f1_bf16 = evaluate(gold, [type(s)(s.id, s.tokens, t) for s, t in zip(gold, bf16_tags)]).overall["strict"].f1
        bf16_sample = measure(bf16_tagger, sample, repeats=3, latency_samples=0)
        bf16_row = (bf16_cost.sentences_per_s, agreement(torch_tags, bf16_tags), f1_bf16, bf16_cost.efficiency,
                    bf16_cost.peak_flops_basis, bf16_cost.peak_flops_per_s,
                    bf16_sample.sentences_per_s / ref_cost.sentences_per_s, agreement(ref_tags, bf16_tagger.predict(sample)))

    speedup_ref = ours_sample.sentences_per_s / ref_cost.sentences_per_s
    speedup_onnx = onnx_cost.sentences_per_s / torch_cost.sentences_per_s
    rows = [
        ("bioner torch: sentences/s (BC5CDR test)", f"{torch_cost.sentences_per_s:.1f}", ""),
        ("bioner torch: words/s, sub-words/s", f"{torch_cost.words_per_s:.0f}, {torch_cost.subwords_per_s:.0f}", ""),
        ("bioner torch: latency p50 / p95 (batch 1)", f"{torch_cost.latency_p50_ms:.1f} / {torch_cost.latency_p95_ms:.1f} ms", ""),
        ("bioner torch: efficiency (achieved / stated peak)", f"{(torch_cost.efficiency or 0):.3f}",
         f">= {BAR_EFFICIENCY} of {torch_cost.peak_flops_basis}"),
        ("fp32 GEMM roof (torch.mm 2048x2048) / stated peak",
         f"{roof_fp32 / 1e9:.0f} GFLOP/s = {roof_fp32 / (torch_cost.peak_flops_per_s or roof_fp32):.2f}", ""),
        ("bioner torch: achieved / GEMM roof",
         f"{(torch_cost.achieved_flops_per_s or 0) / roof_fp32:.3f}", ""),
        (f"reference loop: sentences/s (first {len(sample)})", f"{ref_cost.sentences_per_s:.2f}", ""),
        ("reference loop: achieved FLOP/s (padded to 512) / stated peak",
         f"{ref_rate / 1e9:.0f} GFLOP/s = {ref_rate / (ours_sample.peak_flops_per_s or ref_rate):.2f}", ""),
        ("bioner torch / reference loop", f"{speedup_ref:.1f}x", f">= {BAR_REFERENCE:.0f}x"),
        ("  most fp32 can give: reference time / bioner's FLOPs at the stated peak",
         f"{bound:.1f}x" if bound else "n/a",
         f"FLOPs a sentence: {ref_flops / len(sample) / 1e9:.2f} G padded, {ours_flops / len(sample) / 1e9:.3f} G"),
        ("tag agreement, reference loop vs bioner", f"{ref_agree:.5f}", "same predictions (>= 0.999)"),
        ("ONNX int8: sentences/s", f"{onnx_cost.sentences_per_s:.1f}", ""),
        ("ONNX int8 / torch fp32", f"{speedup_onnx:.2f}x", f">= {BAR_INT8:.0f}x"),
        ("token agreement ONNX int8 vs torch", f"{agree:.5f}", ">= 0.995"),
        ("strict F1 torch / ONNX int8", f"{f1_torch:.4f} / {f1_onnx:.4f}", "|diff| <= 0.005"),
        ("peak RSS tagging the test set (torch, own process)", f"{rss_mb:.0f} MB", "<= 1536 MB"),
    ]
    if bf16_row is not None:
        rows += [
            ("torch bf16: sentences/s (speed-up vs fp32)", f"{bf16_row[0]:.1f} ({bf16_row[0] / torch_cost.sentences_per_s:.2f}x)", ""),
            (f"torch bf16 (what `auto` picks here) / reference loop (first {len(sample)}); tag agreement",
             f"{bf16_row[6]:.1f}x; {bf16_row[7]:.5f}", "reported (the bar is on fp32: identical tags)"),
            ("torch bf16: efficiency (achieved / stated bf16 peak)", f"{bf16_row[3] or 0:.3f}", bf16_row[4]),
            ("bf16 GEMM roof / stated bf16 peak",
             f"{(roof_bf16 or 0) / 1e9:.0f} GFLOP/s = {(roof_bf16 or 0) / (bf16_row[5] or roof_bf16 or 1):.2f}", ""),
            ("token agreement bf16 vs fp32", f"{bf16_row[1]:.5f}", ">= 0.995"),
            ("strict F1 fp32 / bf16", f"{f1_torch:.4f} / {bf16_row[2]:.4f}", "|diff| <= 0.003"),
        ]
    else:
        rows.append(("torch bf16", "skipped: no native bf16 (AMX, AVX512-BF16, CUDA) here", ""))
    print_table(rows)
    missed = []
    if speedup_ref < BAR_REFERENCE:
        missed.append("reference speed-up")
    if (torch_cost.efficiency or 0) < BAR_EFFICIENCY:
        missed.append("efficiency")
    if ref_agree < 0.999:
        missed.append("reference agreement")
    if speedup_onnx < BAR_INT8:
        missed.append("ONNX int8 speed-up")
    if agree < 0.995 or abs(f1_torch - f1_onnx) > 0.005:
        missed.append("ONNX int8 accuracy")
    if bf16_row is not None and (bf16_row[1] < 0.995 or abs(bf16_row[2] - f1_torch) > 0.003):
        missed.append("bf16 accuracy")
    if rss_mb > 1536:
        missed.append("peak RSS")
    if missed:
        print("BARS MISSED: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
