"""Pair gold and predicted spans one-to-one and classify each pair the SemEval-2013 way.

Every pair gets one *code* that fixes its outcome in all four modes at once:

====  ========================  ======  ======  =======  ======
code  pair                      strict  exact   partial  type
====  ========================  ======  ======  =======  ======
0     same bounds, same type    COR     COR     COR      COR
1     same bounds, other type   INC     COR     COR      INC
2     overlap, same type        INC     INC     PAR      COR
3     overlap, other type       INC     INC     PAR      INC
4     no partner                MIS/SPU in every mode
====  ========================  ======  ======  =======  ======

Overlap means at least one shared token, the last token included.  Matching is one-to-one
and the same in all four modes: exact matches pair first, then the remaining overlapping
spans are paired by an optimal assignment that maximises, in this order, the number of
pairs, the pairs with the same bounds, the pairs of the same type, and the shared tokens.
So ``possible`` is always the number of gold spans and ``actual`` the number of predicted
spans, and the result does not depend on the order of the spans (nervaluate pairs each
prediction, in order, with the first overlapping gold span, and pairs each mode separately).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from bioner.corpus.types import Span

EXACT, SAME_BOUNDS_OTHER_TYPE, OVERLAP_SAME_TYPE, OVERLAP_OTHER_TYPE, UNMATCHED = range(5)
MODES = ("strict", "exact", "partial", "type")
CORRECT, INCORRECT, PARTIAL, UNPAIRED = range(4)
# OUTCOME[mode][code]
OUTCOME: dict[str, tuple[int, int, int, int, int]] = {
    "strict": (CORRECT, INCORRECT, INCORRECT, INCORRECT, UNPAIRED),
    "exact": (CORRECT, CORRECT, INCORRECT, INCORRECT, UNPAIRED),
    "partial": (CORRECT, CORRECT, PARTIAL, PARTIAL, UNPAIRED),
    "type": (CORRECT, INCORRECT, CORRECT, INCORRECT, UNPAIRED),
}


def match_spans(gold: Sequence[Span], pred: Sequence[Span]) -> tuple[list[int], list[int]]:
    """Return the pair code of every gold span and of every predicted span."""
    gold_codes = [UNMATCHED] * len(gold)
    pred_codes = [UNMATCHED] * len(pred)
    if not gold or not pred:
        return gold_codes, pred_codes
    index = {(g.start, g.end, g.label): i for i, g in enumerate(gold)}
    open_pred: list[int] = []
    for j, p in enumerate(pred):
        i = index.get((p.start, p.end, p.label))
        if i is None:
            open_pred.append(j)
        else:
            gold_codes[i] = pred_codes[j] = EXACT
    if not open_pred:
        return gold_codes, pred_codes
    open_gold = [i for i, code in enumerate(gold_codes) if code == UNMATCHED]
    if not open_gold:
        return gold_codes, pred_codes
    # Lexicographic weights: one more pair beats any bounds/type/overlap gain, and so on.
    k = min(len(open_gold), len(open_pred)) + 1
    w_type = sum(g.end - g.start for g in gold) + 1
    w_bounds = k * w_type
    w_pair = k * w_bounds
    weights = np.zeros((len(open_gold), len(open_pred)))
    codes = np.full((len(open_gold), len(open_pred)), UNMATCHED)
    for a, i in enumerate(open_gold):
        g = gold[i]
        for b, j in enumerate(open_pred):
            p = pred[j]
            if not g.overlaps(p):
                continue
            same_bounds = g.start == p.start and g.end == p.end
            same_type = g.label == p.label
            shared = min(g.end, p.end) - max(g.start, p.start)
            weights[a, b] = w_pair + w_bounds * same_bounds + w_type * same_type + shared
            codes[a, b] = (SAME_BOUNDS_OTHER_TYPE if same_bounds
                           else OVERLAP_SAME_TYPE if same_type else OVERLAP_OTHER_TYPE)
    if not weights.any():
        return gold_codes, pred_codes
    rows, cols = linear_sum_assignment(weights, maximize=True)
    for a, b in zip(rows, cols):
        if weights[a, b] > 0:
            gold_codes[open_gold[a]] = pred_codes[open_pred[b]] = int(codes[a, b])
    return gold_codes, pred_codes
