"""LLM taggers on tiny random decoders: bidirectional attention, constrained and free generation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from bioner.config import build_config
from bioner.corpus.bio import tags_to_spans
from bioner.corpus.conll import load_conll
from bioner.corpus.datasets import sample_dir
from bioner.encoding.prompts import parse_response
from bioner.models.encoder import load_tokenizer
from bioner.models.generative import GenerativeTagger
from bioner.models.llm import build_llm_cls, build_llm_gen, prepare_llm_tokenizer
from bioner.models.runtime import cast_linear_weights
from tests.helpers import corpus_texts, tiny_decoder_folder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


@pytest.fixture(scope="module")
def sample() -> list:  # type: ignore[type-arg]
    return load_conll(sample_dir() / "train.txt")


@pytest.fixture(scope="module", params=["llama", "mistral", "qwen2"])
def decoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample: list) -> Path:  # type: ignore[type-arg]
    return tiny_decoder_folder(tmp_path_factory.mktemp(request.param), request.param, corpus_texts(sample))


def test_parse_response_counts_every_discrepancy() -> None:
    tokens = ["Aspirin", "causes", "renal", "failure", "."]
    text = "Aspirin:B-Chemical\ncauses:O\nextra:O\nrenal:B-Disease\nfailur:I-Disease\ngarbage line\n.:B-Nope\n"
    tags, counts = parse_response(text, tokens, set(LABELS))
    assert tags == ["B-Chemical", "O", "B-Disease", "I-Disease", "O"]
    assert counts.inserted_lines == 1 and counts.replaced_tokens == 1
    assert counts.malformed_lines == 1 and counts.invalid_tags == 1 and counts.mismatched_tokens == 0
    tags, counts = parse_response("Aspirin:B-Chemical\n", tokens, set(LABELS))
    assert tags == ["B-Chemical", "O", "O", "O", "O"] and counts.mismatched_tokens == 4


def test_bidirectional_sees_the_right_context(decoder: Path) -> None:
    ids = torch.tensor([[5, 17, 23, 42, 8, 9]])
    changed = ids.clone()
    changed[0, 4] = 77  # token j = 4

    def logits(bidirectional: bool) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = build_config("cpu", overrides=["model.kind=llm-cls", f"model.bidirectional={str(bidirectional).lower()}"])
        torch.manual_seed(0)
        model = build_llm_cls(str(decoder), LABELS, cfg.model).eval()
        mask = torch.ones_like(ids)
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits, model(input_ids=changed, attention_mask=mask).logits

    a, b = logits(False)
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-6)  # causal: tokens before j cannot see it
    a, b = logits(True)
    assert not torch.allclose(a[0, :4], b[0, :4], atol=1e-4)  # bidirectional: they do


def gen_tagger(decoder: Path, constrained: bool) -> GenerativeTagger:
    cfg = build_config("cpu", overrides=["model.kind=llm-gen"])
    torch.manual_seed(0)
    model = build_llm_gen(str(decoder), cfg.model)
    tok = prepare_llm_tokenizer(load_tokenizer(str(decoder)))
    return GenerativeTagger(model, tok, LABELS, constrained=constrained, batch_size=4)


def test_constrained_generation_gives_one_valid_tag_per_token_untrained(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    tagger = gen_tagger(decoder, constrained=True)
    tokens = [s.tokens for s in sample[:6]] + [["x"], []]
    out = tagger.predict(tokens)
    assert [len(t) for t in out] == [len(t) for t in tokens]
    assert all(tag in LABELS for tags in out for tag in tags)
    extra = tagger.report_extra()
    assert extra["generation"]["mismatched_tokens"] == 0
    assert extra["generated_tokens_per_input_token"] > 1


def test_bf16_weights_cast_once_give_autocasts_tags_and_scores(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    tagger = gen_tagger(decoder, constrained=True)
    tagger.precision = "bf16"
    tokens = [s.tokens for s in sample[:6]]
    before = tagger.predict_with_scores(tokens)
    cast_linear_weights(tagger.model)
    linear = [m.weight.dtype for m in tagger.model.modules() if isinstance(m, torch.nn.Linear)]
    embedding = [m.weight.dtype for m in tagger.model.modules() if isinstance(m, torch.nn.Embedding)]
    assert torch.bfloat16 in linear and set(embedding) == {torch.float32}  # a tied output layer stays fp32
    assert tagger.predict_with_scores(tokens) == before


def test_free_generation_untrained_is_parsed_and_counted(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    tagger = gen_tagger(decoder, constrained=False)
    tokens = [s.tokens for s in sample[:4]]
    out = tagger.predict(tokens)
    assert [len(t) for t in out] == [len(t) for t in tokens]
    counts = tagger.report_extra()["generation"]
    assert counts["mismatched_tokens"] > 0  # a random model writes nonsense, and it is counted
    assert counts["sentences_with_problems"] == 4
    assert all(tag in LABELS for tags in out for tag in tags)  # unknown tags were read as O, and counted
    assert tagger.predict_with_scores(tokens[:1])[1] is None  # free generation gives no span scores


def test_constrained_generation_scores_spans_with_tag_probabilities(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    tagger = gen_tagger(decoder, constrained=True)
    tokens = [s.tokens for s in sample[:6]]
    tags, scores = tagger.predict_with_scores(tokens)
    assert tags == tagger.predict(tokens)
    assert scores is not None
    for t, sc in zip(tags, scores):
        assert set(sc) == {(s.start, s.end) for s in tags_to_spans(t)}
        assert all(0.0 < p <= 1.0 for p in sc.values())
    assert any(sc for sc in scores)  # an untrained model still predicts some entities here


def test_qlora_on_cpu_is_a_clear_error(decoder: Path) -> None:
    from bioner.errors import ModelError

    cfg = build_config("cpu", overrides=["model.kind=llm-gen", "model.quantize=4bit"])
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ModelError, match="needs a CUDA GPU"):
        build_llm_gen(str(decoder), cfg.model)


def test_constrained_loop_matches_transformers_generate(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    """bioner's constrained decoding (KV cache, output rows only where a tag is chosen) picks the
    same tokens as transformers' generate under the same constraint, with the same probabilities."""
    from transformers import LogitsProcessorList

    from bioner.encoding.prompts import prompt_text
    from bioner.models.generative import _Plan, piece_ids

    class ChoiceProbability:  # records the chosen token's probability over the allowed ones
        def __init__(self) -> None:
            self.steps: list[torch.Tensor] = []

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            self.steps.append(scores.float().log_softmax(-1).max(-1).values.exp())
            return scores

    tagger = gen_tagger(decoder, constrained=True)
    tokens = [s.tokens for s in sample[:5]]
    tags, scores = tagger.predict_with_scores(tokens)
    tok = tagger.tokenizer
    order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))  # the tagger's batch order
    batch = [tokens[i] for i in order]
    tok.padding_side = "left"
    enc = tok([prompt_text(t, tagger.types) for t in batch], return_tensors="pt", padding=True)
    tok.padding_side = "right"
    width = enc["input_ids"].shape[1]
    words = [[piece_ids(tok, f"{w}:") for w in t] for t in batch]
    plans = [_Plan(w, tagger.trie, tok.eos_token_id) for w in words]
    recorder = ChoiceProbability()
    with torch.no_grad():
        out = tagger.model.generate(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], do_sample=False, num_beams=1,
            max_new_tokens=max(tagger._max_new(w) for w in words), pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id, logits_processor=LogitsProcessorList([recorder]),
            prefix_allowed_tokens_fn=lambda b, ids: plans[b].allowed(ids[width:].tolist()))
    steps = torch.stack(recorder.steps, dim=1)
    reference = tagger._read([row[width:].tolist() for row in out], batch, words, steps.tolist())
    for k, i in enumerate(order):
        ref_tags, ref_probs = reference[k]
        assert tags[i] == ref_tags
        for span, p in scores[i].items():
            assert p == pytest.approx(math.prod(ref_probs[span[0]:span[1]]), rel=1e-4, abs=1e-6)


def test_response_loss_equals_the_library_loss(decoder: Path, sample: list) -> None:  # type: ignore[type-arg]
    from bioner.models.llm import response_loss
    from bioner.recipes.tasks import GenerativeTask

    cfg = build_config("cpu", overrides=["model.kind=llm-gen", f"model.name={decoder}"])
    torch.manual_seed(0)
    task = GenerativeTask(cfg, LABELS)
    batch = task.collate(task.examples(sample[:4]))
    with torch.no_grad():
        assert response_loss(task.model, batch).item() == pytest.approx(task.model(**batch).loss.item(), rel=1e-5)


def _as_if_trained(model: torch.nn.Module) -> None:
    """Non-zero LoRA B matrices, so the adapters change the output (they start at zero)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)


def test_dev_scoring_runs_what_the_run_folder_will_run(decoder: Path, sample: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    from bioner.models import load_tagger
    from bioner.recipes.tasks import GenerativeTask

    cfg = build_config("cpu", overrides=["model.kind=llm-gen", f"model.name={decoder}"])
    torch.manual_seed(0)
    task = GenerativeTask(cfg, LABELS, precision="bf16")
    _as_if_trained(task.model)
    tokens = [s.tokens for s in sample[:6]]
    dev = task.tagger()  # a merged copy with bf16 Linear weights
    assert dev.model is not task.model and not hasattr(dev.model, "peft_config")
    task.save(tmp_path)
    assert dev.predict_with_scores(tokens) == load_tagger(tmp_path, precision="bf16").predict_with_scores(tokens)
    # the training model keeps its adapters and fp32 weights
    assert any("lora_" in name for name, _ in task.model.named_parameters())
    assert all(p.dtype == torch.float32 for p in task.model.parameters())


def test_chunked_response_loss_has_the_same_value_and_gradients(decoder: Path, sample: list,  # type: ignore[type-arg]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bioner.models import llm
    from bioner.recipes.tasks import GenerativeTask

    cfg = build_config("cpu", overrides=["model.kind=llm-gen", f"model.name={decoder}"])
    torch.manual_seed(0)
    task = GenerativeTask(cfg, LABELS)
    task.model.eval()  # no dropout: both losses see the same network
    _as_if_trained(task.model)
    batch = task.collate(task.examples(sample[:4]))
    trainable = [p for p in task.model.parameters() if p.requires_grad]

    def loss_and_grads() -> tuple[float, list[torch.Tensor]]:
        loss = llm.response_loss(task.model, batch)
        grads = torch.autograd.grad(loss, trainable)
        return loss.item(), grads

    whole, whole_grads = loss_and_grads()
    vocab = task.model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(llm, "LOSS_CHUNK_LOGITS", 7 * vocab)  # chunks of 7 positions, the last one shorter
    assert int((batch["labels"][:, 1:] != -100).sum()) % 7
    chunked, chunked_grads = loss_and_grads()
    assert chunked == pytest.approx(whole, rel=1e-5)
    for a, b in zip(chunked_grads, whole_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
