"""``bioner bench``: what tagging costs — sentences/s, latency, memory, efficiency."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import (
    AllowPickle,
    Precision,
    Threads,
    TrustRemoteCode,
    at_least,
)
from bioner.cli.output import Format, emit
from bioner.corpus.conll import read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.errors import InputError


def bench_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    dataset: Annotated[str, typer.Option(help="Dataset name or folder whose sentences are tagged.")],
    split: Annotated[str, typer.Option(help="Split to tag.")] = "test",
    limit: Annotated[int | None, typer.Option(callback=at_least(1), help="Only the first N sentences.")] = None,
    batch_size: Annotated[int | None, typer.Option(callback=at_least(1), help="Max windows per batch (default: by tokens; encoders).")] = None,
    max_tokens: Annotated[int | None, typer.Option(callback=at_least(16), help="Max padded sub-words per batch (default: the run's, 1024 on CPU, 16384 on GPU; encoders).")] = None,
    backend: Annotated[str, typer.Option(help="torch, onnx, onnx-fp32 or auto.")] = "torch",
    threads: Threads = None,
    precision: Precision = None,
    repeats: Annotated[int, typer.Option(callback=at_least(1), help="Timed repeats (median reported).")] = 3,
    latency_samples: Annotated[int, typer.Option(callback=at_least(0), help="Sentences timed one by one for batch-1 latency.")] = 200,
    reference_loop: Annotated[bool, typer.Option(help="Also time the reference study's loop (batch 1, padded to 512; encoders).")] = False,
    reference_limit: Annotated[int, typer.Option(callback=at_least(1), help="Sentences for the reference loop.")] = 300,
    fmt: Annotated[Format, typer.Option("--format", help="json or md.")] = Format.md,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Time prediction only (never metrics), after a warm-up, over several repeats."""
    from bioner.bench.cost import agreement, measure
    from bioner.models import load_tagger
    from bioner.models.encoder_tagger import EncoderTagger

    tagger = load_tagger(model, threads, backend, precision=precision, trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle)
    encoder = isinstance(tagger, EncoderTagger)
    if not encoder and (batch_size or max_tokens or reference_loop):
        raise InputError(f"--batch-size, --max-tokens and --reference-loop apply to encoder and llm-cls "
                         f"runs; {model} is a {tagger.kind} run")
    if isinstance(tagger, EncoderTagger):
        tagger.max_tokens, tagger.batch_size = max_tokens or tagger.max_tokens, batch_size
    tokens = [s.tokens for s in islice(read_conll(resolve_dataset(dataset).path(split)), limit)]
    if not tokens:
        raise InputError(f"{dataset} {split} holds no sentences to time")
    report = measure(tagger, tokens, repeats=repeats, latency_samples=latency_samples)
    rows = [(k, v) for k, v in report.to_dict().items() if k != "extra"]
    if reference_loop and isinstance(tagger, EncoderTagger):
        sample = tokens[:reference_limit]
        ref = tagger.reference_loop()
        ref_cost = measure(ref, sample, repeats=1, latency_samples=0, warmup=4)
        ours = measure(tagger, sample, repeats=repeats, latency_samples=0)
        report.extra = {
            "reference_sentences": len(sample),
            "reference_sentences_per_s": ref_cost.sentences_per_s,
            "bioner_sentences_per_s_same_sentences": ours.sentences_per_s,
            "speedup_vs_reference": ours.sentences_per_s / ref_cost.sentences_per_s,
            "tag_agreement_with_reference": agreement(ref.predict(sample), tagger.predict(sample)),
        }
        rows += list(report.extra.items())
    md = "| figure | value |\n|---|---|\n" + "\n".join(
        f"| {k} | {v:,.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows)
    emit(report.to_dict(), md, fmt)
