"""Hand-worked scenarios × SemEval modes, laid out like nervaluate's own tests.

Each row: gold tags, predicted tags, and the expected (correct, incorrect, partial, missed,
spurious) in strict, exact, partial and type mode, worked out by hand.
"""

from __future__ import annotations

import pytest

from bioner.evaluate import evaluate

X, Y = "X", "Y"
S = {
    # name: (gold, pred, {mode: (COR, INC, PAR, MIS, SPU)})
    "perfect": (["B-X", "I-X", "O"], ["B-X", "I-X", "O"],
                dict(strict=(1, 0, 0, 0, 0), exact=(1, 0, 0, 0, 0), partial=(1, 0, 0, 0, 0), type=(1, 0, 0, 0, 0))),
    "shifted_boundary": (["B-X", "I-X", "O", "O"], ["O", "B-X", "I-X", "O"],
                         dict(strict=(0, 1, 0, 0, 0), exact=(0, 1, 0, 0, 0), partial=(0, 0, 1, 0, 0), type=(1, 0, 0, 0, 0))),
    "overlap_on_last_token_only": (["O", "B-X", "O"], ["O", "B-X", "I-X"],
                                   dict(strict=(0, 1, 0, 0, 0), exact=(0, 1, 0, 0, 0), partial=(0, 0, 1, 0, 0), type=(1, 0, 0, 0, 0))),
    "wrong_type": (["B-X", "I-X", "O"], ["B-Y", "I-Y", "O"],
                   dict(strict=(0, 1, 0, 0, 0), exact=(1, 0, 0, 0, 0), partial=(1, 0, 0, 0, 0), type=(0, 1, 0, 0, 0))),
    "wrong_type_and_boundary": (["B-X", "I-X", "O"], ["O", "B-Y", "I-Y"],
                                dict(strict=(0, 1, 0, 0, 0), exact=(0, 1, 0, 0, 0), partial=(0, 0, 1, 0, 0), type=(0, 1, 0, 0, 0))),
    "spurious": (["O", "O"], ["B-X", "O"],
                 dict(strict=(0, 0, 0, 0, 1), exact=(0, 0, 0, 0, 1), partial=(0, 0, 0, 0, 1), type=(0, 0, 0, 0, 1))),
    "missed": (["B-X", "O"], ["O", "O"],
               dict(strict=(0, 0, 0, 1, 0), exact=(0, 0, 0, 1, 0), partial=(0, 0, 0, 1, 0), type=(0, 0, 0, 1, 0))),
    # One prediction covering two gold spans: it pairs with the leftmost, the other is missed.
    "one_pred_two_gold": (["B-X", "B-X", "O"], ["B-X", "I-X", "O"],
                          dict(strict=(0, 1, 0, 1, 0), exact=(0, 1, 0, 1, 0), partial=(0, 0, 1, 1, 0), type=(1, 0, 0, 1, 0))),
    # ... prefers the gold span of its own type, whatever the position.
    "one_pred_two_gold_type_first": (["B-Y", "B-X", "O"], ["B-X", "I-X", "O"],
                                     dict(strict=(0, 1, 0, 1, 0), exact=(0, 1, 0, 1, 0), partial=(0, 0, 1, 1, 0), type=(1, 0, 0, 1, 0))),
    # Two predictions inside one gold span: the larger overlap pairs, the other is spurious.
    "nested_looking_split": (["B-X", "I-X", "I-X"], ["B-X", "B-X", "I-X"],
                             dict(strict=(0, 1, 0, 0, 1), exact=(0, 1, 0, 0, 1), partial=(0, 0, 1, 0, 1), type=(1, 0, 0, 0, 1))),
    # An exact match is never stolen by an overlapping neighbour.
    "exact_beside_overlap": (["B-X", "I-X", "B-Y", "O"], ["B-X", "I-X", "B-Y", "I-Y"],
                             dict(strict=(1, 1, 0, 0, 0), exact=(1, 1, 0, 0, 0), partial=(1, 0, 1, 0, 0), type=(2, 0, 0, 0, 0))),
    # I-Y right after B-X is read as a new Y entity (repaired, counted).
    "invalid_i_after_other_type": (["B-X", "I-X"], ["B-X", "I-Y"],
                                   dict(strict=(0, 1, 0, 0, 1), exact=(0, 1, 0, 0, 1), partial=(0, 0, 1, 0, 1), type=(1, 0, 0, 0, 1))),
}


@pytest.mark.parametrize("mode", ["strict", "exact", "partial", "type"])
@pytest.mark.parametrize("name", list(S))
def test_scenario(name: str, mode: str) -> None:
    gold, pred, expected = S[name]
    m = evaluate([gold], [pred]).overall[mode]
    assert (m.correct, m.incorrect, m.partial, m.missed, m.spurious) == expected[mode]
    assert m.possible == m.correct + m.incorrect + m.partial + m.missed
    assert m.actual == m.correct + m.incorrect + m.partial + m.spurious
    credit = m.correct + 0.5 * m.partial
    assert m.precision == pytest.approx(credit / m.actual if m.actual else 0.0)
    assert m.recall == pytest.approx(credit / m.possible if m.possible else 0.0)


def test_counts_add_up_over_sentences() -> None:
    gold = [S[n][0] for n in S]
    pred = [S[n][1] for n in S]
    report = evaluate(gold, pred)
    for mode in ("strict", "exact", "partial", "type"):
        m = report.overall[mode]
        summed = [sum(S[n][2][mode][k] for n in S) for k in range(5)]
        assert [m.correct, m.incorrect, m.partial, m.missed, m.spurious] == summed
    assert report.bio_repairs["pred"]["I_after_other_type"] == 1


def test_by_length_has_real_precision() -> None:
    # gold: a 3-token entity; prediction: a 1-token entity inside it plus a spurious 1-token one
    gold = [["B-X", "I-X", "I-X", "O", "O"]]
    pred = [["B-X", "O", "O", "O", "B-X"]]
    r = evaluate(gold, pred)
    one, three = r.by_length["1"]["strict"], r.by_length["3+"]["strict"]
    assert (one.possible, one.actual, one.precision) == (0, 2, 0.0)
    assert (three.possible, three.actual, three.recall) == (1, 0, 0.0)
    # partial credit goes to the gold span's bucket for recall, the prediction's for precision
    assert r.by_length["3+"]["partial"].recall == 0.5
    assert r.by_length["1"]["partial"].precision == 0.25
    # the reference method cuts predictions at gold boundaries: the clipped 1-token piece
    # sits in bucket 3+, the prediction on a gold O token is spurious in bucket 1
    paper1, paper3 = r.by_length_paper["1"]["strict"], r.by_length_paper["3+"]["strict"]
    assert (paper3.possible, paper3.actual, paper3.correct) == (1, 1, 0)
    assert (paper1.possible, paper1.actual, paper1.spurious) == (0, 1, 1)


def test_paper_method_rewards_a_prediction_that_runs_past_the_gold_span() -> None:
    gold = [["B-X", "O", "O"]]
    pred = [["B-X", "I-X", "I-X"]]
    r = evaluate(gold, pred)
    assert r.by_length["1"]["strict"].f1 == 0.0  # the real prediction is 3 tokens long
    assert r.by_length_paper["1"]["strict"].recall == 1.0  # clipped to the gold span it matches


def test_per_type_counts_each_side_by_its_own_type() -> None:
    r = evaluate([["B-X", "O"]], [["B-Y", "O"]])
    assert r.per_type["X"]["exact"].recall == 1.0 and r.per_type["X"]["exact"].actual == 0
    assert r.per_type["Y"]["exact"].precision == 1.0 and r.per_type["Y"]["exact"].possible == 0
    assert r.per_type["X"]["strict"].f1 == 0.0


def test_token_metrics() -> None:
    r = evaluate([["B-X", "I-X", "O", "O"]], [["B-X", "O", "O", "B-X"]])
    assert r.token["B-X"].precision == 0.5 and r.token["B-X"].recall == 1.0
    assert r.token["I-X"].support == 1 and r.token["I-X"].recall == 0.0
    assert r.token["O"].precision == 0.5


def test_json_shape() -> None:
    d = evaluate([["B-X", "O"]], [["B-X", "O"]], bootstrap=50).to_dict()
    assert set(d) >= {"overall", "per_type", "by_length", "by_length_paper", "token", "ci",
                      "n_sentences", "n_gold", "n_pred"}
    assert set(d["overall"]) == {"strict", "exact", "partial", "type"}
    assert set(d["by_length"]) == {"1", "2", "3+"} and set(d["by_length"]["1"]) == {"strict", "partial"}
    assert set(d["overall"]["strict"]) == {"precision", "recall", "f1", "correct", "incorrect",
                                           "partial", "missed", "spurious", "possible", "actual"}
    assert d["ci"]["strict_f1"] == [1.0, 1.0]
