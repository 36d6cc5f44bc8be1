"""The CRF against brute force on tiny cases, and across window cuts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from bioner.corpus.bio import tags_to_spans
from bioner.corpus.types import Span
from bioner.models.crf import CRF, allowed_transitions
from bioner.models.encoder import load_tokenizer
from bioner.models.encoder_tagger import EncoderTagger

LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y"]


def _path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    score = float(crf.start[path[0]].detach() + emissions[0, path[0]])
    for k in range(1, len(path)):
        score += float(crf.transitions[path[k - 1], path[k]] + emissions[k, path[k]])
    return score + float(crf.end[path[-1]])


def _allowed(path: tuple[int, ...], first: bool) -> bool:
    start_ok, trans_ok = allowed_transitions(LABELS)
    if first and not start_ok[path[0]]:
        return False
    return all(trans_ok[a, b] for a, b in zip(path, path[1:]))


@pytest.mark.parametrize("length", [1, 2, 3, 4])
@pytest.mark.parametrize("first", [True, False])
def test_partition_and_viterbi_match_brute_force(length: int, first: bool) -> None:
    torch.manual_seed(length + 10 * first)
    crf = CRF(LABELS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions = torch.randn(1, length, len(LABELS))
    mask = torch.ones(1, length, dtype=torch.bool)
    flag = torch.tensor([first])
    paths = [p for p in itertools.product(range(len(LABELS)), repeat=length) if _allowed(p, first)]
    scores = torch.tensor([_path_score(crf, emissions[0], p) for p in paths])
    log_z = torch.logsumexp(scores, 0)
    gold = paths[len(paths) // 2]
    nll = crf.neg_log_likelihood(emissions, torch.tensor([gold]), mask, flag)
    assert nll.item() == pytest.approx((log_z - scores[len(paths) // 2]).item(), abs=1e-4)
    best = paths[int(scores.argmax())]
    assert crf.decode(emissions, mask, flag) == [list(best)]


def test_start_rule_only_where_a_row_starts_its_sentence() -> None:
    crf = CRF(LABELS)
    emissions = torch.zeros(2, 2, len(LABELS))
    emissions[:, 0, LABELS.index("I-X")] = 5.0  # the evidence says: inside an X entity
    emissions[:, 1, LABELS.index("I-X")] = 5.0
    paths = crf.decode(emissions, torch.ones(2, 2, dtype=torch.bool), torch.tensor([True, False]))
    assert [LABELS[i] for i in paths[0]] == ["B-X", "I-X"]  # a sentence cannot start inside an entity
    assert [LABELS[i] for i in paths[1]] == ["I-X", "I-X"]  # a window cut in mid-sentence can
    gold = torch.tensor([[2, 2]])
    nll_cut = crf.neg_log_likelihood(emissions[1:], gold, torch.ones(1, 2, dtype=torch.bool), torch.tensor([False]))
    assert nll_cut.item() < 1.0  # the gold path of a cut window is likely, not "impossible" (~1e4)


class _OneHotEmissions(nn.Module):
    """A stand-in backbone whose emission for each sub-word is the label its word says."""

    def __init__(self, by_token: dict[int, str], crf: bool = True) -> None:
        super().__init__()
        self.labels = LABELS
        self.crf = CRF(LABELS) if crf else None
        self.by_token = by_token
        self.dummy = nn.Parameter(torch.zeros(1))

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.zeros(*input_ids.shape, len(LABELS))
        for (i, j), tok in zip(itertools.product(range(input_ids.shape[0]), range(input_ids.shape[1])),
                               input_ids.flatten().tolist()):
            if tok in self.by_token:
                out[i, j, LABELS.index(self.by_token[tok])] = 8.0
        return out


def test_an_entity_crossing_a_window_cut_comes_back_whole() -> None:
    from bioner.models.sources import embedded_model_dir

    tok = load_tokenizer(str(embedded_model_dir()))
    ids = {w: tok.convert_tokens_to_ids(w) for w in ("the", "alpha", "beta")}
    model = _OneHotEmissions({ids["the"]: "O", ids["alpha"]: "B-X", ids["beta"]: "I-X"})
    tagger = EncoderTagger(model, tok, "first", max_subwords=16, stride=4)  # type: ignore[arg-type]
    words = ["the"] * 5 + ["alpha"] + ["beta"] * 20 + ["the"] * 5
    windows = tagger.encoder().encode_many([words])
    assert len(windows) > 1 and any(words[w.owned[0]] == "beta" for w in windows[1:])  # cuts inside it
    tags = tagger.predict([words])[0]
    assert tags_to_spans(tags) == [Span(5, 26, "X")]


@pytest.mark.parametrize(("start", "stop", "first"), [(1, 3, True), (0, 2, True), (2, 5, True), (0, 5, False),
                                                      (3, 4, True)])
def test_segment_probability_is_the_crf_marginal(start: int, stop: int, first: bool) -> None:
    from bioner.models.crf import segment_log_prob

    torch.manual_seed(start * 7 + stop)
    crf = CRF(LABELS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    length = 5
    emissions = torch.randn(1, length, len(LABELS))
    mask = torch.ones(1, length, dtype=torch.bool)
    flag = torch.tensor([first])
    paths = [p for p in itertools.product(range(len(LABELS)), repeat=length) if _allowed(p, first)]
    scores = torch.tensor([_path_score(crf, emissions[0], p) for p in paths])
    probs = (scores - torch.logsumexp(scores, 0)).exp()
    b_x, i_x = LABELS.index("B-X"), LABELS.index("I-X")
    head = b_x if first else i_x  # a cut window may open inside an entity
    want = sum(float(pr) for p, pr in zip(paths, probs)
               if p[start] == head and all(t == i_x for t in p[start + 1:stop]) and (stop == length or p[stop] != i_x))
    alpha, beta, log_z = crf.forward_backward(emissions, mask, flag)
    assert float(log_z[0]) == pytest.approx(float(torch.logsumexp(scores, 0)), abs=1e-4)
    trans, end = crf.transition_scores()
    got = math.exp(segment_log_prob(alpha[0], beta[0], float(log_z[0]), emissions[0], trans, end, length,
                                    start, stop, head, i_x))
    assert got == pytest.approx(want, abs=1e-5)


def test_span_scores_are_probabilities_and_follow_the_evidence() -> None:
    from bioner.models.sources import embedded_model_dir

    tok = load_tokenizer(str(embedded_model_dir()))
    ids = {w: tok.convert_tokens_to_ids(w) for w in ("the", "alpha", "beta")}
    for crf in (True, False):
        model = _OneHotEmissions({ids["the"]: "O", ids["alpha"]: "B-X", ids["beta"]: "I-X"}, crf=crf)
        tagger = EncoderTagger(model, tok, "first", max_subwords=16, stride=4)  # type: ignore[arg-type]
        words = ["the", "alpha", "beta", "the"] + ["the"] * 20 + ["alpha", "beta", "beta"] + ["the"] * 3
        tags, scores = tagger.predict_with_scores([words])
        assert set(scores[0]) == {(s.start, s.end) for s in tags_to_spans(tags[0])} == {(1, 3), (24, 27)}
        assert all(0.99 < p <= 1.0 for p in scores[0].values()), (crf, scores)
