#!/usr/bin/env python3
"""Distillation on BC5CDR: teacher vs a gold-only twin vs the distilled student.

    python bench/distill.py                                   # the issue's setup (hours)
    python bench/distill.py --teacher RUN [--teacher RUN]     # existing teacher runs
    python bench/distill.py --teacher RUN --limit-train 1000 --limit-eval 1000 --budget-minutes 4 \
        --limit-unlabeled 3000 --bar 0        # a scaled-down check (minutes)

Teacher: the given runs, or an ensemble of three MiniLM runs (the cpu preset, seeds 1-3)
trained here.  Twin and student: MiniLM with the same recipe, the same gold sentences and the
same training-time budget (``train.max_train_seconds``); the student also learns from the
teachers' distributions on unlabelled text — the sentences of NCBI-disease, BC2GM, BioRED,
ChemProt and JNLPBA train splits, labels never read; sentences also in BC5CDR dev/test are
dropped.  Prints test strict F1 with intervals, by length, a paired test (student > twin), the
share of the teacher-twin gap the student closes, the student's and twin's inference cost, and
where the time went.  Bar (default): student ≥ twin + 0.5 points with p < 0.05.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import print_table, use_shared_data

REPO = Path(__file__).resolve().parents[1]
UNLABELED = ("NCBI-disease", "BC2GM", "BioRED", "ChemProt", "JNLPBA")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, action="append", help="teacher run folder (repeat for an ensemble)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-distill")
    ap.add_argument("--budget-minutes", type=float, default=45.0, help="training budget of twin and student each")
    ap.add_argument("--teacher-budget-minutes", type=float, default=45.0)
    ap.add_argument("--limit-train", type=int, default=None, help="gold sentences for twin and student")
    ap.add_argument("--limit-eval", type=int, default=None, help="dev sentences for epoch selection (test: always all)")
    ap.add_argument("--limit-unlabeled", type=int, default=None)
    ap.add_argument("--student-epochs", type=int, default=None,
                    help="epochs over gold + pseudo-labelled text (default: the preset's); pick it, with "
                         "--limit-unlabeled, so the LR schedule ends within the budget")
    ap.add_argument("--twin-is-teacher", action="store_true",
                    help="the first teacher run is the twin (it is gold-only, with the same recipe; its "
                         "training time must fit --budget-minutes): saves training one more MiniLM")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--bar", type=float, default=0.005, help="student - twin strict F1 (0: no bar)")
    args = ap.parse_args()
    use_shared_data()

    from bioner.bench.cost import measure
    from bioner.cli import quiet_libraries
    from bioner.config import build_config
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.evaluate import compare, evaluate, evaluate_tagger
    from bioner.models import load_tagger
    from bioner.recipes.distill import distill
    from bioner.recipes.train import train

    quiet_libraries()
    args.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    base = ["data.dataset=BC5CDR"] + ([f"data.limit_train={args.limit_train}"] if args.limit_train else []) \
        + ([f"data.limit_eval={args.limit_eval}"] if args.limit_eval else [])
    budget = [f"train.max_train_seconds={args.budget_minutes * 60}"]

    def run(name: str, overrides: list[str]) -> Path:
        folder = args.out / name
        if not (folder / "eval_test.json").is_file():
            started = time.perf_counter()
            train(build_config("cpu", overrides=base + overrides), folder, resume=(folder / "config.yaml").is_file())
            seconds[name] = time.perf_counter() - started
        return folder

    teachers = args.teacher or [run(f"teacher-seed{k}", [f"train.seed={k}",
                                                         f"train.max_train_seconds={args.teacher_budget_minutes * 60}"])
                                for k in (1, 2, 3)]
    twin = teachers[0] if args.twin_is_teacher else run("twin", budget)
    unlabeled = [str(resolve_dataset(name).path("train")) for name in UNLABELED]
    student_dir = args.out / "student"
    if not (student_dir / "eval_test.json").is_file():
        epochs = [f"train.epochs={args.student_epochs}"] if args.student_epochs else []
        cfg = build_config("cpu", overrides=base + budget + epochs, flags={"distill": {
            "teachers": [str(t) for t in teachers], "unlabeled": unlabeled, "alpha": args.alpha,
            "temperature": args.temperature, **({"limit_unlabeled": args.limit_unlabeled} if args.limit_unlabeled else {})}})
        started = time.perf_counter()
        distill(cfg, student_dir, resume=(student_dir / "config.yaml").is_file())
        seconds["student (pseudo-labelling + training)"] = time.perf_counter() - started
    pseudo = json.loads((student_dir / "distill.json").read_text())["pseudo_labelling"]

    test = list(read_conll(resolve_dataset("BC5CDR").path("test")))
    preds = {}
    rows: list[tuple[str, str, str]] = []
    reports = {}
    members = [*((f"teacher {k + 1}", t) for k, t in enumerate(teachers)),
               *([] if args.twin_is_teacher else [("twin", twin)]), ("student", student_dir)]
    for name, folder in members:
        tagger = load_tagger(folder, backend="torch")
        report = evaluate_tagger(tagger, test, bootstrap=1000, seed=42)
        preds[name] = tagger.predict_sentences(test)
        reports[name] = report
    if args.twin_is_teacher:
        preds["twin"], reports["twin"] = preds["teacher 1"], reports["teacher 1"]
    if len(teachers) > 1:  # the ensemble teacher: averaged distributions, argmax per word
        from bioner.corpus.types import Sentence
        from bioner.recipes.distill import ensemble_tags

        tags = ensemble_tags([load_tagger(t, backend="torch") for t in teachers], [s.tokens for s in test])
        ens = [Sentence(s.id, s.tokens, t, s.offsets, s.source, dict(s.meta)) for s, t in zip(test, tags)]
        reports["teacher ensemble"] = evaluate(test, ens, bootstrap=1000, seed=42)
    teacher_key = "teacher ensemble" if len(teachers) > 1 else "teacher 1"
    for name, report in reports.items():
        strict = report.overall["strict"]
        lo, hi = (report.ci or {}).get("strict_f1", (float("nan"), float("nan")))
        by_len = " / ".join(f"{report.by_length[b]['strict'].f1:.4f}" for b in ("1", "2", "3+"))
        rows.append((f"{name}: test strict F1 [95%] (by length 1 / 2 / 3+)", f"{strict.f1:.4f} [{lo:.4f}, {hi:.4f}] ({by_len})", "-"))
    f1 = {k: r.overall["strict"].f1 for k, r in reports.items()}
    p = compare(test, preds["student"], preds["twin"], seed=42).p_value
    gain = f1["student"] - f1["twin"]
    gap = f1[teacher_key] - f1["twin"]
    rows += [
        ("student - twin strict F1", f"{gain * 100:+.2f} points, paired p = {p:.4f}",
         f"≥ +{args.bar * 100:.1f} points, p < 0.05" if args.bar else "-"),
        ("share of the teacher-twin gap closed", f"{gain / gap:.0%}" if gap > 0 else "n/a (teacher not better)", "-"),
        ("pseudo-labelled sentences (dropped as dev/test, duplicates)",
         f"{pseudo['kept']} ({pseudo['dropped_in_dev_or_test']}, {pseudo['duplicates']})", "-"),
        ("pseudo-labelling seconds", f"{pseudo['seconds']:.0f}", "-"),
    ]
    for name, folder in (("twin", twin), ("student", student_dir)):
        cost = measure(load_tagger(folder, backend="torch"), [s.tokens for s in test[:500]], repeats=1)
        rows.append((f"{name}: inference sentences/s, parameters", f"{cost.sentences_per_s:.1f}, {cost.params_total:,}",
                     "equal parameters"))
        train_s = sum(json.loads(line)["train_seconds"] for line in (folder / "metrics.jsonl").read_text().splitlines()[-1:])
        rows.append((f"{name}: training seconds (loop)", f"{train_s:.0f}", f"≤ {args.budget_minutes * 60:.0f}"))
    if args.twin_is_teacher:
        rows.append(("twin", f"teacher 1 ({twin.name}): gold-only, same recipe", "-"))
    for name, s in seconds.items():
        rows.append((f"wall seconds this run: {name}", f"{s:.0f}", "-"))
    print_table(rows)
    failed = bool(args.bar) and (gain < args.bar or p >= 0.05)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
