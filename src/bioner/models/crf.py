"""A linear-chain CRF whose Viterbi path is always valid IOB2.

Transitions that IOB2 forbids (``O → I-X``, ``B-X → I-Y``, ``I-X → I-Y`` for ``X != Y``, and
``I-X`` at the start) are masked out, both in training and in decoding, so the tagger can only
emit sequences the BIO decoder reads without repairs.  The start rule holds only where a row
starts its sentence: a window that begins mid-sentence (a long sentence cut into windows) may
begin inside an entity, so its ``first`` flag is False and ``I-X`` is allowed there.
"""

from __future__ import annotations

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
        # score of the gold path
        score = start.gather(1, tags[:, :1]).squeeze(1) + emissions[:, 0].gather(1, tags[:, :1]).squeeze(1)
        for k in range(1, t):
            step = trans[tags[:, k - 1], tags[:, k]] + emissions[:, k].gather(1, tags[:, k:k + 1]).squeeze(1)
            score = score + step * maskf[:, k]
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        score = score + self.end[last]
        # log partition
        alpha = start + emissions[:, 0]
        for k in range(1, t):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, k]
            alpha = torch.where(mask[:, k:k + 1], nxt, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        has = mask[:, 0]
        return ((log_z - score) * has.float()).sum() / has.float().sum().clamp(min=1)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor, first: torch.Tensor | None = None) -> list[list[int]]:
        emissions = emissions.float()
        b, t, n = emissions.shape
        start, trans = self._scores(b, first)
        score = start + emissions[:, 0]
        history = []
        for k in range(1, t):
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            nxt = best + emissions[:, k]
            score = torch.where(mask[:, k:k + 1], nxt, score)
            history.append(idx)
        score = score + self.end
        lengths = mask.sum(1).tolist()
        paths = []
        for i in range(b):
            length = int(lengths[i])
            if length == 0:
                paths.append([])
                continue
            tag = int(score[i].argmax())
            path = [tag]
            for k in range(length - 1, 0, -1):
                tag = int(history[k - 1][i, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths
