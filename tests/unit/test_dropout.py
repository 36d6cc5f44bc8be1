"""Dropout with PCG64 masks for CPU training (bioner.models.dropout)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from bioner.models.dropout import (
    ATTENTION,
    CpuDropout,
    _attention,
    cpu_dropout,
    keep_mask,
    use_cpu_dropout,
)
from tests.helpers import tiny_bert_folder


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masks_keep_one_minus_p_and_preserve_the_mean(p: float) -> None:
    torch.manual_seed(0)
    n = 400_000
    kept = keep_mask((n,), p).float().mean().item()
    q = 1 - round(p * 65536) / 65536
    assert abs(kept - q) < 5 * math.sqrt(q * (1 - q) / n)  # five standard errors
    x = torch.ones(n)
    out = cpu_dropout(x, p)
    assert all(v == 0.0 or v == pytest.approx(1 / q) for v in out.unique().tolist())
    assert abs(out.mean().item() - 1.0) < 5 * math.sqrt((1 - q) / q / n)
    # successive masks differ, and positions are not correlated with their neighbours
    a, b = keep_mask((n,), p), keep_mask((n,), p)
    assert not torch.equal(a, b)
    both = (a[1:] & a[:-1]).float().mean().item()
    assert abs(both - q * q) < 5 * math.sqrt(q * q * (1 - q * q) / n)


def test_masks_follow_torchs_seed_and_eval_is_the_identity() -> None:
    x = torch.randn(64, 32)
    torch.manual_seed(3)
    first = cpu_dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(cpu_dropout(x, 0.2), first)
    assert cpu_dropout(x, 0.2, training=False) is x and cpu_dropout(x, 0.0) is x
    layer = CpuDropout(0.2).eval()
    assert layer(x) is x
    grad = torch.ones_like(x, requires_grad=True)
    torch.manual_seed(3)
    cpu_dropout(grad, 0.2).sum().backward()
    scale = 1 / (1 - round(0.2 * 65536) / 65536)
    assert torch.equal(grad.grad, (first != 0).float() * scale)
    # bf16 values are scaled by the exact factor, then rounded (not by a bf16-rounded factor)
    torch.manual_seed(3)
    half = cpu_dropout(x.bfloat16(), 0.2)
    kept = half != 0
    assert torch.equal(half[kept], (x.bfloat16()[kept].float() * scale).bfloat16())


@pytest.mark.parametrize("shape", [(1,), (3, 5), (16, 12, 37, 37)])
def test_masks_are_the_words_earlier_versions_drew(shape: tuple[int, ...]) -> None:
    """Masks come from PCG64's raw output now, Generator.integers before: the same words, so a
    run from an earlier version reproduces (any length, including ones not a multiple of 4)."""
    import numpy as np

    torch.manual_seed(11)
    mask = keep_mask(shape, 0.1)
    torch.manual_seed(11)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    words = np.random.Generator(np.random.PCG64(seed)).integers(0, 65536, size=math.prod(shape), dtype=np.uint16)
    assert torch.equal(mask, torch.from_numpy(words >= round(0.1 * 65536)).view(shape))


def test_attention_without_dropout_is_sdpa_and_with_a_mask_of_ones_is_the_same_product() -> None:
    """The written-out path (used when dropout is asked for) computes what SDPA computes."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.is_causal = False
    q, k, v = (torch.randn(2, 4, 7, 8) for _ in range(3))
    mask = torch.ones(2, 1, 7, 7, dtype=torch.bool)
    mask[1, :, :, 5:] = False  # the second row's last two keys are padding
    expected, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=None)
    plain, _ = _attention(module, q, k, v, mask, dropout=0.0)
    assert torch.equal(plain, expected)
    # a p so small that no element is dropped (round(p * 65536) == 0): the written-out path itself
    written, _ = _attention(module, q, k, v, mask, dropout=1e-9)
    assert torch.allclose(written, expected, atol=1e-5)
    additive = torch.zeros(2, 1, 7, 7).masked_fill(~mask, torch.finfo(torch.float32).min)
    assert torch.allclose(_attention(module, q, k, v, additive, dropout=1e-9)[0], expected, atol=1e-5)
    # bf16 under autocast: computed in fp32 as SDPA's math path does, so only the output is rounded
    from torch.nn.attention import SDPBackend, sdpa_kernel

    qb, kb, vb = (3 * t.bfloat16() for t in (q, k, v))
    with sdpa_kernel(SDPBackend.MATH):
        math = torch.nn.functional.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        written, _ = _attention(module, qb, kb, vb, mask, dropout=1e-9)
    assert written.dtype == torch.bfloat16
    assert (written.float() - math.transpose(1, 2).float()).abs().max() <= 0.02


def test_a_bert_trains_with_it_and_its_saved_config_names_no_attention(tmp_path: Path) -> None:
    from transformers import BertForTokenClassification

    folder = tiny_bert_folder(tmp_path / "bert")
    model = BertForTokenClassification.from_pretrained(folder)
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[2, 6:] = 0
    model.eval()
    before = model(input_ids=ids, attention_mask=mask).logits
    # embeddings, 2 layers x (attention probabilities' module, attention output, FFN output),
    # classifier; and the attention implementation
    assert use_cpu_dropout(model) == 9
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert model.config._attn_implementation == ATTENTION
    assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, before)  # eval: unchanged
    model.train()
    torch.manual_seed(1)
    a = model(input_ids=ids, attention_mask=mask).logits
    torch.manual_seed(1)
    b = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(a, b) and not torch.allclose(a, before)
    a.sum().backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    model.save_pretrained(tmp_path / "saved")
    assert ATTENTION not in json.dumps(json.loads((tmp_path / "saved" / "config.json").read_text()))


def test_a_decoder_keeps_sdpa_and_gets_the_dropout_modules(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from tests.helpers import tiny_decoder_folder

    folder = tiny_decoder_folder(tmp_path / "llama", "llama", ["a small text", "another one"])
    model = AutoModelForCausalLM.from_pretrained(folder)
    plain = sum(type(m) is torch.nn.Dropout for m in model.modules())
    assert use_cpu_dropout(model) == plain
    assert model.config._attn_implementation == "sdpa"
