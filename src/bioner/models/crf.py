"""A linear-chain CRF whose Viterbi path is always valid IOB2.

Transitions that IOB2 forbids (``O → I-X``, ``B-X → I-Y``, ``I-X → I-Y`` for ``X != Y``, and
``I-X`` at the start) are masked out, both in training and in decoding, so the tagger can only
emit sequences the BIO decoder reads without repairs.  The start rule holds only where a row
starts its sentence: a window that begins mid-sentence (a long sentence cut into windows) may
begin inside an entity, so its ``first`` flag is False and ``I-X`` is allowed there.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bioner.corpus.labels import OUTSIDE, entity_type

_FORBIDDEN = -1e4


def allowed_transitions(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(start mask, transition mask) with True where IOB2 allows it."""
    n = len(labels)
    start = torch.ones(n, dtype=torch.bool)
    trans = torch.ones(n, n, dtype=torch.bool)
    for j, to in enumerate(labels):
        if to.startswith("I-"):
            start[j] = False
            for i, frm in enumerate(labels):
                trans[i, j] = frm != OUTSIDE and entity_type(frm) == entity_type(to)
    return start, trans


class CRF(nn.Module):
    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        n = len(labels)
        self.transitions = nn.Parameter(torch.zeros(n, n))
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        start_ok, trans_ok = allowed_transitions(labels)
        self.register_buffer("start_ok", start_ok, persistent=False)
        self.register_buffer("trans_ok", trans_ok, persistent=False)

    def _scores(self, batch: int, first: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Start scores per row (batch, labels) and the transition matrix, forbidden moves masked."""
        start = self.start.masked_fill(~self.start_ok, _FORBIDDEN).expand(batch, -1)
        if first is not None:
            start = torch.where(first.to(start.device).unsqueeze(1), start, self.start.expand(batch, -1))
        trans = self.transitions.masked_fill(~self.trans_ok, _FORBIDDEN)
        return start, trans

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
                           first: torch.Tensor | None = None) -> torch.Tensor:
        """Mean NLL over the batch; ``mask`` marks real positions (a prefix of each row); ``first``
        (bool per row, default all True) marks rows that start their sentence."""
        emissions = emissions.float()
        b, t, _ = emissions.shape
        start, trans = self._scores(b, first)
        tags = tags.clamp(min=0)
        maskf = mask.float()
        # score of the gold path, all positions at once (a loop over words cost a CPU step ~2 ms)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        moves = trans[tags[:, :-1], tags[:, 1:]]
        score = start.gather(1, tags[:, :1]).squeeze(1) + emitted[:, 0] + ((moves + emitted[:, 1:]) * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        score = score + self.end[last]
        # log partition (per-step tensors unbound once: see forward_backward)
        steps, real = emissions.unbind(1), mask.unsqueeze(2).unbind(1)
        trans_in = trans.unsqueeze(0)
        alpha = start + steps[0]
        for k in range(1, t):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans_in, dim=1) + steps[k]
            alpha = torch.where(real[k], nxt, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        has = mask[:, 0]
        return ((log_z - score) * has.float()).sum() / has.float().sum().clamp(min=1)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor, first: torch.Tensor | None = None) -> list[list[int]]:
        emissions = emissions.float()
        b, t = emissions.shape[:2]
        start, trans = self._scores(b, first)
        score = start + emissions[:, 0]
        history = []
        for k in range(1, t):
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            nxt = best + emissions[:, k]
            score = torch.where(mask[:, k:k + 1], nxt, score)
            history.append(idx)
        score = score + self.end
        # Backtrack all rows at once (one gather per step, not one tensor index per word): past a
        # row's end its tag stays the best final tag, which then steps back from its last word.
        tags = [score.argmax(1, keepdim=True)]
        for k in range(t - 1, 0, -1):
            back = history[k - 1].gather(1, tags[-1])
            tags.append(torch.where(mask[:, k:k + 1], back, tags[-1]))
        rows = torch.cat(tags[::-1], 1).tolist()
        return [row[:length] for row, length in zip(rows, mask.sum(1).tolist())]

    @torch.no_grad()
    def forward_backward(self, emissions: torch.Tensor, mask: torch.Tensor, first: torch.Tensor | None = None,
                         temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``alpha`` (batch, words, labels): log-score of every prefix ending at each word with each
        label (its emission included); ``beta``: log-score of every suffix after it (its emission
        excluded, the end score at the last real word); ``log_z`` per row.  Segment and tag
        marginals are sums of these, so span scores are probabilities under the CRF itself.
        ``temperature`` divides every score (the best path stays the same; probabilities soften)."""
        emissions = emissions.float() / temperature
        b, t, n = emissions.shape
        start, trans = self._scores(b, first)
        start, trans = start / temperature, trans / temperature
        # Per-step tensors are unbound once and the steps stacked at the end: on CPU these tiny
        # (batch, labels) ops cost their dispatch, not their arithmetic, so fewer ops is faster.
        steps, real = emissions.unbind(1), mask.unsqueeze(2).unbind(1)
        trans_in = trans.unsqueeze(0)
        alphas = [start + steps[0]]
        for k in range(1, t):
            nxt = torch.logsumexp(alphas[-1].unsqueeze(2) + trans_in, dim=1) + steps[k]
            alphas.append(torch.where(real[k], nxt, alphas[-1]))
        end = (self.end.detach() / temperature).expand(b, -1)
        betas = [end]
        for k in range(t - 2, -1, -1):
            nxt = torch.logsumexp(trans_in + (steps[k + 1] + betas[-1]).unsqueeze(1), dim=2)
            betas.append(torch.where(real[k + 1], nxt, end))
        alpha, beta = torch.stack(alphas, 1), torch.stack(betas[::-1], 1)
        lengths = mask.sum(1).clamp(min=1)
        last = alpha.gather(1, (lengths - 1).view(b, 1, 1).expand(b, 1, n)).squeeze(1)
        log_z = torch.logsumexp(last + self.end / temperature, dim=1)
        return alpha, beta, log_z

    def transition_scores(self, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked transition matrix and end scores, as marginals at ``temperature`` use them."""
        _, trans = self._scores(1)
        return trans.detach() / temperature, self.end.detach() / temperature


Rows = torch.Tensor | list[float]  # (length, labels) as a tensor, or flattened row-major into one list


def segment_log_prob(alpha: Rows, beta: Rows, log_z: float, emissions: Rows, trans: torch.Tensor | list[list[float]],
                     end: torch.Tensor | list[float], length: int, start: int, stop: int,
                     first_tag: int, inside_tag: int) -> float:
    """log P(tags[start] = first_tag, tags[start+1:stop] = inside_tag, tags[stop] != inside_tag) for
    one row of length ``length`` (``stop == length``: the segment reaches the row's end).
    Computed on Python floats: a span touches a handful of scores, where tensor indexing would
    cost more than the arithmetic.  To score many spans of one row pass its tables flattened
    (``.flatten().tolist()``): one list of floats instead of a list per word keeps the garbage
    collector's work down, which otherwise costs more than the scoring (a full collection over a
    loaded process is ~0.2 s)."""
    alpha, beta, emissions = (x.flatten().tolist() if isinstance(x, torch.Tensor) else x  # type: ignore[misc]
                              for x in (alpha, beta, emissions))
    trans, end = (x.tolist() if isinstance(x, torch.Tensor) else x for x in (trans, end))  # type: ignore[misc]
    n_labels = len(end)
    lp = alpha[start * n_labels + first_tag]
    prev = first_tag
    for k in range(start + 1, stop):  # emissions, trans and end at the temperature alpha/beta used
        lp += trans[prev][inside_tag] + emissions[k * n_labels + inside_tag]
        prev = inside_tag
    if stop < length:
        row_t, at = trans[prev], stop * n_labels
        options = [row_t[j] + emissions[at + j] + beta[at + j] for j in range(n_labels) if j != inside_tag]
        top = max(options)  # scores are finite (forbidden moves score -1e4), so this is safe
        lp += top + math.log(sum(math.exp(o - top) for o in options))
    else:
        lp += end[prev]
    return float(lp - log_z)
