#!/usr/bin/env python3
"""LLM tagging cost: the same tiny decoder, the same test sentences, three ways.

    python bench/llm_cost.py [--model FOLDER] [--sentences 500] [--dataset BC5CDR]

Rows: llm-gen with free generation, llm-gen with constrained decoding, llm-cls (one forward
pass).  Prints sentences/s, generated tokens per input token, and alignment counters.  Bars:
llm-cls >= 20x the sentences/s of free generation; constrained decoding never misaligns.
Without --model a tiny random Llama (tokenizer trained on the fly) is built, as in the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import use_shared_data

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None, help="decoder folder (default: a tiny random Llama)")
    ap.add_argument("--dataset", default="BC5CDR")
    ap.add_argument("--sentences", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32", help="float32 or bfloat16")
    args = ap.parse_args()
    use_shared_data()
    import torch

    from bioner.cli import quiet_libraries
    from bioner.config import build_config
    from bioner.corpus.conll import load_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.models.encoder import TokenTagger, load_tokenizer
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.generative import GenerativeTagger
    from bioner.models.llm import build_llm_cls, build_llm_gen, prepare_llm_tokenizer
    from bioner.models.runtime import pick_device
    from bioner.models.tiny import corpus_texts
    from bioner.models.tiny import tiny_decoder as tiny_decoder_folder

    quiet_libraries()
    files = resolve_dataset(args.dataset)
    test = load_conll(files.path("test"))[: args.sentences]
    labels = ["O"] + [f"{p}-{t}" for t in sorted({t[2:] for s in test for t in s.tags or [] if t != "O"})
                      for p in "BI"]
    model_dir = args.model
    if model_dir is None:
        model_dir = Path(tempfile.mkdtemp()) / "tiny-llama"
        tiny_decoder_folder(model_dir, "llama", corpus_texts(load_conll(files.path("train"))[:500] + test), hidden=128)
    dtype = getattr(torch, args.dtype)
    device = pick_device()
    tokens = [s.tokens for s in test]
    cfg = build_config("cpu", overrides=["model.kind=llm-gen"])
    tok = prepare_llm_tokenizer(load_tokenizer(str(model_dir)))
    rows = []
    gen_model = build_llm_gen(str(model_dir), cfg.model).to(device=device, dtype=dtype)
    for constrained in (False, True):
        tagger = GenerativeTagger(gen_model, tok, labels, constrained=constrained, batch_size=args.batch_size)
        start = time.perf_counter()
        out = tagger.predict(tokens)
        seconds = time.perf_counter() - start
        extra = tagger.report_extra()
        assert [len(t) for t in out] == [len(t) for t in tokens]
        rows.append((f"llm-gen {'constrained' if constrained else 'free'}", len(tokens) / seconds,
                     extra["generated_tokens_per_input_token"], extra["generation"]))
    cls_cfg = build_config("cpu", overrides=["model.kind=llm-cls"])
    cls = TokenTagger(build_llm_cls(str(model_dir), labels, cls_cfg.model), labels, crf=False).to(device=device, dtype=dtype)
    tagger = EncoderTagger(cls, tok, "first", max_subwords=512, stride=128)
    tagger.predict(tokens[:16])  # warm-up
    start = time.perf_counter()
    tagger.predict(tokens)
    seconds = time.perf_counter() - start
    rows.append(("llm-cls", len(tokens) / seconds, 0.0, {}))
    print(f"{len(tokens)} {args.dataset} test sentences, {device}, {args.dtype}, model {model_dir}\n")
    print("| tagger | sentences/s | generated tokens / input token | misaligned tokens | malformed lines | invalid tags |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sps, gpt, gen in rows:
        print(f"| {name} | {sps:.2f} | {gpt:.2f} | {gen.get('mismatched_tokens', '-')} "
              f"| {gen.get('malformed_lines', '-')} | {gen.get('invalid_tags', '-')} |")
    free, constrained, cls_row = rows
    ratio = cls_row[1] / free[1]
    print(f"\nllm-cls / free generation: {ratio:.1f}x (bar >= 20x); constrained misaligned tokens: "
          f"{constrained[3]['mismatched_tokens']} (bar: 0)")
    ok = ratio >= 20 and constrained[3]["mismatched_tokens"] == 0
    if not ok:
        print("BAR MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
