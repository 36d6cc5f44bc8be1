from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from bioner.encoding.subwords import (
    IGNORE,
    N_SHAPES,
    SubwordEncoder,
    _windows,
    case_shape,
    stitch,
)
from bioner.models.encoder import build_encoder, load_tokenizer
from bioner.models.encoder_tagger import EncoderTagger
from tests.helpers import tiny_bert_folder

LABELS = ["O", "B-Chemical", "I-Chemical"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert_folder(tmp_path_factory.mktemp("tiny"))


def long_sentence(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    vocab = ["aspirin", "hepatotoxicity", "the", "of", "5-fluorouracil", "(", ")", "mg/kg",
             "dichloromethane", "p<0.05", "ångström", "naïve", "\u200b", "x"]
    words = [rng.choice(vocab) for _ in range(n)]
    tags = ["B-Chemical" if rng.random() < 0.2 else "O" for _ in range(n)]
    for i in range(1, n):
        if tags[i - 1] != "O" and rng.random() < 0.5:
            tags[i] = "I-Chemical"
    return words, tags


def test_window_cutting_keeps_words_whole_and_overlaps() -> None:
    starts = list(range(0, 100, 2))  # 50 words of two sub-words
    cuts = _windows(starts, 100, size=20, stride=6)
    assert cuts[0][0] == 0 and cuts[-1][1] == 100
    for (a, b), (c, d) in zip(cuts, cuts[1:]):
        assert b - a <= 20 and a % 2 == 0 and b % 2 == 0
        assert c < b and b - c >= 4  # overlap, at word starts
    assert _windows(starts, 100, size=200, stride=6) == [(0, 100)]


def test_three_thousand_word_sentence_every_word_owned_once(tiny: Path) -> None:
    words, tags = long_sentence(3000)
    tok = load_tokenizer(str(tiny))
    enc = SubwordEncoder(tok, {t: i for i, t in enumerate(LABELS)}, "first", max_subwords=64, stride=16)
    windows = enc.encode(0, words, tags)
    assert len(windows) > 50 and enc.stats.split_sentences == 1
    assert enc.stats.empty_words == words.count("\u200b") > 0  # zero-width space: counted, kept
    owned = sorted(w for win in windows for w in win.owned)
    assert owned == list(range(3000))
    assert all(len(win) <= 64 for win in windows)
    # labels sit on first sub-words of owned words only, and say the right thing
    for win in windows:
        seen: set[int] = set()
        for word, label in zip(win.word_ids, win.labels):
            if word >= 0 and word not in seen and word in win.owned:
                assert LABELS[label] == tags[word]
            elif label != IGNORE:
                raise AssertionError("label on a non-first or non-owned sub-word")
            seen.add(word)
    # stitching an oracle back gives each word exactly its own label
    preds = [[(LABELS.index(tags[w]) if w >= 0 else 0) for w in win.word_ids] for win in windows]
    assert [LABELS[i] for i in stitch(3000, windows, preds, "first")] == tags
    assert [LABELS[i] for i in stitch(3000, windows, preds, "all")] == tags


def test_all_strategy_labels_every_subword_and_votes(tiny: Path) -> None:
    tok = load_tokenizer(str(tiny))
    enc = SubwordEncoder(tok, {t: i for i, t in enumerate(LABELS)}, "all", max_subwords=64)
    (win,) = enc.encode(0, ["dichloromethane", "x"], ["B-Chemical", "O"])
    pieces = [k for k, w in enumerate(win.word_ids) if w == 0]
    assert len(pieces) > 1 and all(win.labels[k] == 1 for k in pieces)
    votes = [0] * len(win)
    for k in pieces[1:]:
        votes[k] = 2  # majority says I-Chemical, the first sub-word says O
    assert stitch(2, [win], [votes], "all")[0] == 2
    assert stitch(2, [win], [votes], "first")[0] == 0


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_predicts_one_tag_per_word_for_a_long_sentence(tiny: Path, crf: bool) -> None:
    torch.manual_seed(0)
    model = build_encoder(str(tiny), LABELS, crf=crf)
    tagger = EncoderTagger(model, load_tokenizer(str(tiny)), "first", max_subwords=64, stride=16)
    words, _ = long_sentence(3000, seed=1)
    short = ["aspirin", "works"]
    out = tagger.predict([words, [], short])
    assert [len(t) for t in out] == [3000, 0, 2]
    assert all(t in LABELS for t in out[0])
    if crf:  # CRF output is valid IOB2, also across window cuts: no I- that continues nothing
        for prev, cur in zip(["O"] + out[0], out[0]):
            assert not (cur.startswith("I-") and prev == "O")
    # the same words alone or in a batch get the same tags (batching is invisible)
    assert tagger.predict([short]) == [out[2]]


def test_context_adds_neighbouring_subwords_that_are_never_labelled_nor_owned(tiny: Path) -> None:
    tok = load_tokenizer(str(tiny))
    label2id = {t: i for i, t in enumerate(LABELS)}
    short = [long_sentence(n, seed=n) for n in (6, 5, 7)]
    long_words, long_tags = long_sentence(200, seed=9)
    sents = short[:2] + [([], [])] + [short[2], (long_words, long_tags)]
    plain = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16)
    ctx = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, context=8)
    words_lists, tag_lists = [s[0] for s in sents], [s[1] or None for s in sents]
    a, b = plain.encode_many(words_lists, tag_lists), ctx.encode_many(words_lists, tag_lists)
    assert [w.sentence for w in a] == [w.sentence for w in b] and 2 not in {w.sentence for w in b}
    assert [w.owned for w in a] == [w.owned for w in b]
    sub = [plain._subwords(w)[0] if w else [] for w in words_lists]
    first, second = b[0], b[1]
    assert len(first) == len(a[0]) + 8 and first.input_ids[-9:-1] == sub[1][:8]  # right only, at the start
    left = (sub[0])[-8:]
    assert second.input_ids[1:9] == left  # the previous sentence's last sub-words
    for wa, wb in zip(a, b):
        assert len(wb) <= 64
        kept = [(i, w, lab) for i, w, lab in zip(wb.input_ids, wb.word_ids, wb.labels) if w >= 0]
        assert kept == [(i, w, lab) for i, w, lab in zip(wa.input_ids, wa.word_ids, wa.labels) if w >= 0]
        extra = [lab for w, lab in zip(wb.word_ids, wb.labels) if w < 0]
        assert all(lab == IGNORE for lab in extra)
    # the empty sentence is a boundary: no right context for sentence 1, no left one for sentence 3
    body = slice(len(ctx.prefix), len(b[1]) - len(ctx.suffix))
    assert b[1].word_ids[body][-1] >= 0 and b[1].word_ids[body][0] < 0
    body = slice(len(ctx.prefix), len(b[2]) - len(ctx.suffix))
    assert b[2].sentence == 3 and b[2].word_ids[body][0] >= 0 and b[2].word_ids[body][-1] < 0
    long_a = [w for w in a if w.sentence == 4]
    long_b = [w for w in b if w.sentence == 4]
    assert len(long_b) > 1 and [w.input_ids for w in long_a] == [w.input_ids for w in long_b]  # split: no context
    # a tagger with context still tags every word, with and without a CRF
    for crf in (False, True):
        model = build_encoder(str(tiny), ["O", "B-Chemical", "I-Chemical"], crf=crf)
        tagger = EncoderTagger(model, tok, "first", 64, 16, context=8)
        out = tagger.predict(words_lists)
        assert [len(t) for t in out] == [len(w) for w in words_lists]


def test_case_shapes_follow_each_piece_of_each_word(tiny: Path) -> None:
    assert [case_shape(p) for p in ("no", "NO", "No", "CsA", "5", "-", "ångström", "Ångström", "K")] == \
        [0, 2, 1, 3, 0, 0, 0, 1, 2]
    tok = load_tokenizer(str(tiny))
    label2id = {t: i for i, t in enumerate(LABELS)}
    enc = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, context=8, shapes=True)
    words = [["NO", "and", "no"], ["CsA", "5-FU", "Parkinson", "\u200b"]]
    first, second = enc.encode_many(words)
    pieces = tok.convert_ids_to_tokens(second.input_ids)
    # special tokens 0; context from the previous sentence keeps its classes (NO and no)
    assert second.shape_ids[0] == 0 and second.shape_ids[-1] == 0 and len(second.shape_ids) == len(second)
    assert second.shape_ids[1:4] == [2, 0, 0] and pieces[1:4] == ["no", "and", "no"]
    own = [(p, s) for p, s, w in zip(pieces, second.shape_ids, second.word_ids) if w >= 0]
    assert own[0] == ("csa", 3) and ("parkinson", 1) in own and ("fu", 2) in own and ("5", 0) in own
    assert first.shape_ids[1:4] == [2, 0, 0]
    plain = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, context=8)
    assert [w.input_ids for w in plain.encode_many(words)] == [first.input_ids, second.input_ids]
    assert all(not w.shape_ids for w in plain.encode_many(words))  # off: no token types at all


def _case_shape_by_letter(piece: str) -> int:
    """The casing rule spelled out letter by letter (what case_shape's fast paths must agree with)."""
    cased = [c for c in piece if c.isupper() or c.islower()]
    if not any(c.isupper() for c in cased):
        return 0
    if all(c.isupper() for c in cased):
        return 2
    return 1 if cased[0].isupper() and all(c.islower() for c in cased[1:]) else 3


def test_case_shape_fast_paths_agree_with_the_letter_rule() -> None:
    # title-case letters (ǅ, ᾈ) count as cased for str.islower/isupper but not letter by letter
    pieces = ["no", "NO", "No", "nO", "CsA", "5", "-", "", "ǅ", "ǅa", "aǅ", "Aǅ", "ǅA", "ᾈ", "Ⅷ", "ⅷ", "ß", "ẞ",
              "ΣΑ", "Σα", "ﬀ", "İ", "x2", "X2", "2x", "µg", "ＡＢ", "ａｂ", "Ǆ", "ǆ"]
    assert [case_shape(p) for p in pieces] == [_case_shape_by_letter(p) for p in pieces]


def test_one_batch_tokenizer_call_encodes_as_one_call_per_sentence(tiny: Path) -> None:
    tok = load_tokenizer(str(tiny))
    label2id = {t: i for i, t in enumerate(LABELS)}
    sentences = [long_sentence(12, 1)[0], [], long_sentence(300, 2)[0], ["\u200b"], ["NO", "and", "CsA"], [],
                 long_sentence(5, 3)[0]]
    for shapes in (False, True):
        batch = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, shapes=shapes)
        single = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, shapes=shapes)
        assert batch._subwords_many(sentences) == [single._subwords(w) if w else ([], [], []) for w in sentences]
        # zero-width spaces tokenize to nothing: replaced by the unknown token and counted, in both
        assert batch.stats.empty_words == single.stats.empty_words == sum(w.count("\u200b") for w in sentences) > 0
        assert any(any(shape) for _, _, shape in batch._subwords_many(sentences)) == shapes
        windows = SubwordEncoder(tok, label2id, "first", max_subwords=64, stride=16, shapes=shapes).encode_many(sentences)
        assert sorted({w.sentence for w in windows}) == [k for k, words in enumerate(sentences) if words]


def test_word_shape_model_starts_as_the_pretrained_one_and_learns_casing(tiny: Path, tmp_path: Path) -> None:
    from bioner.config import build_config
    from bioner.recipes.tasks import TokenTask

    labels = ["O", "B-Chemical", "I-Chemical"]
    config = build_config("cpu", overrides=[f"model.name={tiny}", "model.max_subwords=64", "model.word_shape=true"])
    torch.manual_seed(0)
    task = TokenTask(config, labels)
    table = task.model.backbone.bert.embeddings.token_type_embeddings
    assert table.num_embeddings == N_SHAPES and all(torch.equal(table.weight[k], table.weight[0]) for k in range(4))
    # the same words in upper and lower case: only casing tells them apart (NO is a chemical)
    data = [(["NO", "was", "given"], ["B-Chemical", "O", "O"]), (["no", "was", "given"], ["O", "O", "O"])] * 8
    windows = task.encoder.encode_many([w for w, _ in data], [t for _, t in data])
    batch = task.collate(windows)
    assert "token_type_ids" in batch
    opt = torch.optim.AdamW(task.model.parameters(), lr=3e-3)
    task.model.train()
    for _ in range(60):
        loss = task.loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
    task.model.eval()
    task.save(tmp_path / "model")
    from bioner.models import load_tagger

    tagger = load_tagger(tmp_path / "model", backend="torch")
    assert tagger.predict([["NO", "was", "given"], ["no", "was", "given"]]) == \
        [["B-Chemical", "O", "O"], ["O", "O", "O"]]
