"""``bioner evaluate``: SemEval span metrics for a prediction file or a trained model."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import AllowPickle, Precision, TrustRemoteCode, at_least
from bioner.cli.output import Format, emit
from bioner.corpus.conll import load_conll, read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.errors import BionerError
from bioner.evaluate import compare, evaluate, evaluate_tagger
from bioner.files import check_output


def evaluate_command(
    gold: Annotated[Path | None, typer.Option(help="Gold CoNLL file.")] = None,
    pred: Annotated[list[Path] | None, typer.Option(help="Predicted CoNLL file (twice with --paired).")] = None,
    model: Annotated[Path | None, typer.Option(help="A run folder from `bioner train`; predicts, then scores.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name or folder (with --model).")] = None,
    split: Annotated[str, typer.Option(help="Split to score with --model.")] = "test",
    limit: Annotated[int | None, typer.Option(callback=at_least(1), help="Score only the first N sentences.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="json or md.")] = Format.md,
    bootstrap: Annotated[int, typer.Option(callback=at_least(0), help="Bootstrap resamples for 95% intervals (0: none).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap / paired test.")] = 42,
    paired: Annotated[bool, typer.Option(help="With two --pred: test that the first beats the second.")] = False,
    test: Annotated[str, typer.Option(help="Paired test: permutation (approximate randomization) or bootstrap.")] = "permutation",
    resamples: Annotated[int, typer.Option(callback=at_least(100), help="Resamples of the paired test (at least 100).")] = 10_000,
    strict_bio: Annotated[bool, typer.Option(help="Fail on invalid IOB2 instead of repairing I- to B-.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write the report here instead of stdout.")] = None,
    free_generation: Annotated[bool, typer.Option(help="llm-gen models: generate freely, then align (not constrained).")] = False,
    precision: Precision = None,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Score predictions: strict/exact/partial/type, per type, per entity length, with intervals."""
    check_output(output, [gold, *(pred or [])])
    if model is not None:
        from bioner.models import load_tagger

        if dataset is None:
            raise BionerError("--model needs --dataset NAME|FOLDER (and optionally --split)")
        gold_path = resolve_dataset(dataset).path(split)
        check_output(output, [gold_path])
        gold_sents = list(islice(read_conll(gold_path), limit))
        tagger = load_tagger(model, precision=precision, trust_remote_code=trust_remote_code,
                             allow_pickle=allow_pickle)
        if free_generation:
            if not hasattr(tagger, "constrained"):
                raise BionerError("--free-generation applies to llm-gen models only")
            tagger.constrained = False  # type: ignore[attr-defined]
        report = evaluate_tagger(tagger, gold_sents, bootstrap=bootstrap, seed=seed, strict_bio=strict_bio)
        emit(report.to_dict(), report.to_markdown(), fmt, output)
        return
    if gold is None or not pred:
        raise BionerError("give --gold FILE and --pred FILE, or --model RUN_DIR --dataset NAME")
    gold_sents = load_conll(gold)[:limit]
    preds = [load_conll(p)[:limit] for p in pred]
    if paired:
        if len(preds) != 2:
            raise BionerError("--paired needs exactly two --pred files (A then B)")
        result = compare(gold_sents, preds[0], preds[1], method=test, n_resamples=resamples, seed=seed)
        md = (f"A = {pred[0]}, B = {pred[1]}\n\nstrict F1: A {result.f1_a:.4f}, B {result.f1_b:.4f}, "
              f"delta {result.delta:+.4f}, one-sided p = {result.p_value:.4g} "
              f"({result.method}, {result.n_resamples} resamples, {result.n_sentences} sentences)")
        emit(result.to_dict(), md, fmt, output)
        return
    if len(preds) != 1:
        raise BionerError("several --pred files need --paired")
    report = evaluate(gold_sents, preds[0], bootstrap=bootstrap, seed=seed, strict_bio=strict_bio)
    emit(report.to_dict(), report.to_markdown(), fmt, output)
