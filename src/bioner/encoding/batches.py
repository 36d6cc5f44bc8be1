"""Windows → padded tensors, in batches of similar length (dynamic padding, no 512-padding)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch

from bioner.encoding.subwords import IGNORE, Window


def collate(windows: Sequence[Window], pad_id: int, with_words: bool = False,
            pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad a batch of windows to one width.  Rows are padded as Python lists and turned into
    tensors in one call each: filling a tensor row by row cost more than the model's own time
    on short sentences with a fast backend."""
    width = max(max(len(w) for w in windows), pad_to or 0)

    def padded(rows: list[list[int]], value: int) -> torch.Tensor:
        return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)

    batch = {"input_ids": padded([w.input_ids for w in windows], pad_id),
             "attention_mask": padded([[1] * len(w) for w in windows], 0),
             "labels": padded([w.labels for w in windows], IGNORE)}
    if windows[0].shape_ids:  # casing classes, read by the model as token types
        batch["token_type_ids"] = padded([w.shape_ids for w in windows], 0)
    if with_words:
        # first sub-word position and label of each owned word, for a CRF over words
        n_words = max((len(w.owned) for w in windows), default=0) or 1
        positions, word_labels = [], []
        for w in windows:
            first: dict[int, int] = {}
            for k, word in enumerate(w.word_ids):
                if word >= 0 and word not in first:
                    first[word] = k
            pos = [first[word] for word in w.owned]
            positions.append(pos + [-1] * (n_words - len(pos)))
            word_labels.append([max(w.labels[k], 0) for k in pos] + [0] * (n_words - len(pos)))
        pos_t = torch.tensor(positions, dtype=torch.long)
        # does the window start its sentence? (the CRF's no-I-at-start rule holds only there)
        first_word = torch.tensor([not w.owned or w.owned[0] == 0 for w in windows], dtype=torch.bool)
        batch.update(word_pos=pos_t, word_labels=torch.tensor(word_labels, dtype=torch.long), word_mask=pos_t >= 0,
                     word_first=first_word)
    return batch


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int | None,
                           group_factor: int = 50) -> list[list[int]]:
    """Batches of indices: shuffled in mega-batches, sorted by length inside each, so padding
    stays small while the order still changes every epoch.  ``seed=None``: sorted, no shuffle
    (for inference)."""
    order = list(range(len(lengths)))
    if seed is None:
        order.sort(key=lambda i: -lengths[i])
        return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    mega = batch_size * group_factor
    batches: list[list[int]] = []
    for k in range(0, len(order), mega):
        chunk = sorted(order[k:k + mega], key=lambda i: -lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def token_budget_batches(lengths: Sequence[int], max_tokens: int,
                         max_items: int | None = None) -> Iterator[list[int]]:
    """Inference batches sorted by length whose padded size stays under ``max_tokens`` (and
    which hold at most ``max_items`` windows, if given)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        full = max_items is not None and len(batch) >= max_items
        if batch and (full or lengths[batch[0]] * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch
