"""The evaluator against seqeval and nervaluate, on random and on real data."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nervaluate import Evaluator
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from bioner.corpus.bio import tags_to_spans
from bioner.corpus.conll import load_conll
from bioner.evaluate import compare, evaluate
from bioner.evaluate.noise import perturb_predictions
from tests.helpers import dataset_split, valid_iob2

NERVALUATE_MODE = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}


def one_to_one(gold: list[list[str]], pred: list[list[str]]) -> bool:
    """Every predicted span overlaps at most one gold span and vice versa."""
    for g, p in zip(gold, pred):
        gs, ps = tags_to_spans(g), tags_to_spans(p)
        if any(sum(a.overlaps(b) for b in ps) > 1 for a in gs):
            return False
        if any(sum(a.overlaps(b) for b in gs) > 1 for a in ps):
            return False
    return True


def assert_matches_nervaluate(gold: list[list[str]], pred: list[list[str]], types: list[str]) -> None:
    ours = evaluate(gold, pred).overall
    theirs = Evaluator(gold, pred, tags=types, loader="list").evaluate()["overall"]
    for mode, name in NERVALUATE_MODE.items():
        a, b = ours[mode], theirs[name]
        assert (a.correct, a.incorrect, a.partial, a.missed, a.spurious) == (
            b.correct, b.incorrect, b.partial, b.missed, b.spurious), mode
        assert (a.possible, a.actual) == (b.possible, b.actual)
        for k in ("precision", "recall", "f1"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), abs=1e-9), (mode, k)


def assert_matches_seqeval_strict(gold: list[list[str]], pred: list[list[str]]) -> None:
    m = evaluate(gold, pred).overall["strict"]
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    assert m.precision == pytest.approx(precision_score(gold, pred, **kw), abs=1e-9)
    assert m.recall == pytest.approx(recall_score(gold, pred, **kw), abs=1e-9)
    assert m.f1 == pytest.approx(f1_score(gold, pred, **kw), abs=1e-9)


corpus = st.integers(1, 6).flatmap(
    lambda n: st.tuples(st.lists(valid_iob2(12), min_size=n, max_size=n),
                        st.lists(valid_iob2(12), min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(corpus)
def test_strict_equals_seqeval_on_valid_sequences(data: tuple[list[list[str]], list[list[str]]]) -> None:
    gold, pred = data
    pred = [(p + ["O"] * len(g))[: len(g)] for g, p in zip(gold, pred)]
    assume(any(tags_to_spans(g) for g in gold) and any(tags_to_spans(p) for p in pred))
    assert_matches_seqeval_strict(gold, pred)


@settings(max_examples=300, deadline=None)
@given(corpus)
def test_all_modes_equal_nervaluate_on_one_to_one_overlaps(data: tuple[list[list[str]], list[list[str]]]) -> None:
    gold, pred = data
    pred = [(p + ["O"] * len(g))[: len(g)] for g, p in zip(gold, pred)]
    assume(one_to_one(gold, pred))
    assert_matches_nervaluate(gold, pred, ["Chemical", "Disease", "Gene"])


def test_divergence_nervaluate_type_mode_depends_on_prediction_order() -> None:
    """Gold Y spans two tokens; the model predicts X then Y inside it.

    nervaluate's type mode pairs the first prediction (X) with the gold span and calls it
    incorrect, leaving the Y prediction spurious.  We pair the gold Y with the Y prediction
    (same type is preferred), so type mode has one correct and one spurious.  Both give
    possible 1 and actual 2; only which prediction is the extra one differs.
    """
    gold, pred = [["B-Y", "I-Y"]], [["B-X", "B-Y"]]
    ours = evaluate(gold, pred).overall["type"]
    theirs = Evaluator(gold, pred, tags=["X", "Y"], loader="list").evaluate()["overall"]["ent_type"]
    assert (ours.correct, ours.incorrect, ours.spurious) == (1, 0, 1)
    assert (theirs.correct, theirs.incorrect, theirs.spurious) == (0, 1, 1)


def test_conlleval_style_repair_equals_seqeval_default_mode() -> None:
    """On invalid IOB2 our repair (I- starts an entity) is what conlleval and seqeval's default do."""
    gold = [["O", "I-X", "I-X", "O", "B-Y", "I-X"]]
    pred = [["B-X", "I-X", "O", "I-Y", "I-Y", "B-X"]]
    assert evaluate(gold, pred).overall["strict"].f1 == pytest.approx(f1_score(gold, pred))


@pytest.mark.parametrize("name", ["BC5CDR", "JNLPBA"])
def test_real_test_split_with_perturbed_predictions(data_dir: Path, name: str) -> None:
    gold = load_conll(dataset_split(data_dir, name, "test"))
    types = sorted({sp.label for s in gold for sp in tags_to_spans(s.tags or [])})
    pred = perturb_predictions(gold, 0.08, seed=7, types=types)
    g_tags = [s.tags or [] for s in gold]
    p_tags = [s.tags or [] for s in pred]
    assert_matches_seqeval_strict(g_tags, p_tags)
    report = evaluate(gold, pred)
    assert 0.6 < report.overall["strict"].f1 < 0.95  # the perturbation really bit
    keep = [k for k in range(len(gold)) if one_to_one([g_tags[k]], [p_tags[k]])]
    assert len(keep) > 0.9 * len(gold)
    assert_matches_nervaluate([g_tags[k] for k in keep], [p_tags[k] for k in keep], types)


def test_bootstrap_interval_brackets_the_point_estimate() -> None:
    rng = random.Random(3)
    gold, pred = [], []
    for _ in range(300):
        g = ["B-X", "I-X", "O", "B-Y", "O"]
        p = list(g) if rng.random() < 0.7 else ["O", "B-X", "O", "B-Y", "B-X"]
        gold.append(g)
        pred.append(p)
    r = evaluate(gold, pred, bootstrap=500, seed=1)
    assert r.ci is not None
    lo, hi = r.ci["strict_f1"]
    assert lo < r.overall["strict"].f1 < hi
    assert 0.02 < hi - lo < 0.2
    assert evaluate(gold, pred, bootstrap=500, seed=1).ci == r.ci  # seeded, reproducible
    assert {"per_type.X.strict_f1", "by_length.2.partial_f1", "by_length_paper.1.strict_f1"} <= set(r.ci)


def test_paired_test_detects_a_better_system_and_not_a_tie() -> None:
    rng = random.Random(5)
    gold, good, bad = [], [], []
    for _ in range(200):
        g = ["B-X", "I-X", "O", "B-Y"]
        gold.append(g)
        good.append(list(g) if rng.random() < 0.9 else ["O"] * 4)
        bad.append(list(g) if rng.random() < 0.6 else ["O"] * 4)
    for method in ("permutation", "bootstrap"):
        better = compare(gold, good, bad, method=method, n_resamples=2000, seed=1)
        assert better.delta > 0.1 and better.p_value < 0.01
        same = compare(gold, good, good, method=method, n_resamples=2000, seed=1)
        assert same.delta == 0 and same.p_value > 0.4
