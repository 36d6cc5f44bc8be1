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

Overlap means at least one shared token, the last token included.  Unlike nervaluate,
matching is one-to-one: when one prediction overlaps two gold spans (or the reverse) the
best pair is kept (same bounds, then same type, then most shared tokens, then leftmost) and
the other span is missed (or spurious), so ``possible`` is always the number of gold spans
and ``actual`` the number of predicted spans.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    candidates: list[tuple[int, int, int, int, int, int, int]] = []
    for j in open_pred:
        p = pred[j]
        for i, g in enumerate(gold):
            if gold_codes[i] != UNMATCHED or not (g.start < p.end and p.start < g.end):
                continue
            same_bounds = g.start == p.start and g.end == p.end
            same_type = g.label == p.label
            shared = min(g.end, p.end) - max(g.start, p.start)
            code = (SAME_BOUNDS_OTHER_TYPE if same_bounds
                    else OVERLAP_SAME_TYPE if same_type else OVERLAP_OTHER_TYPE)
            candidates.append((-same_bounds, -same_type, -shared, g.start, p.start, i, j * 8 + code))
    candidates.sort()
    for *_, i, packed in candidates:
        j, code = divmod(packed, 8)
        if gold_codes[i] == UNMATCHED and pred_codes[j] == UNMATCHED:
            gold_codes[i] = pred_codes[j] = code
    return gold_codes, pred_codes
