"""The generative tagger: a causal LM that writes ``token:TAG`` per input token.

With ``constrained=True`` (the default) decoding is forced to reproduce each input token and
may only pick a tag of the label set, so alignment is exact by construction; without it the
model writes freely and :func:`parse_response` aligns and counts every discrepancy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bioner.corpus.bio import tags_to_spans
from bioner.corpus.labels import LabelSet
from bioner.encoding.prompts import GenerationCounts, parse_response, prompt_text
from bioner.errors import ModelError
from bioner.models.base import Tagger
from bioner.models.folder import TaggerMeta, check_loadable, pretrained_kwargs
from bioner.models.runtime import autocast


def piece_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class _Plan:
    """The only token sequences constrained decoding may produce for one sentence."""

    def __init__(self, words: list[list[int]], trie: dict[int | None, Any], eos: int) -> None:
        self.words, self.trie, self.eos = words, trie, eos
        self.seen = 0  # generated ids consumed so far
        self.word = 0
        self.offset = 0  # inside the forced ids of the current word
        self.node: dict[int | None, Any] | None = None  # inside the tag trie, or None

    def allowed(self, generated: list[int]) -> list[int]:
        for tok in generated[self.seen:]:
            self.seen += 1
            if self.word >= len(self.words):
                continue
            if self.node is None:
                self.offset += 1
                if self.offset == len(self.words[self.word]):
                    self.node = self.trie
            else:
                self.node = self.node.get(tok, {})
                if None in self.node:  # a whole tag was written
                    self.word, self.offset, self.node = self.word + 1, 0, None
        if self.word >= len(self.words):
            return [self.eos]
        if self.node is None:
            return [self.words[self.word][self.offset]]
        return [k for k in self.node if k is not None] or [self.eos]


class GenerativeTagger(Tagger):
    kind = "llm-gen"

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], constrained: bool = True,
                 batch_size: int = 8) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = labels
        self.types = list(LabelSet.from_tags(labels).types)
        self.constrained = constrained
        self.batch_size = batch_size
        self.tag_ids = {label: piece_ids(tokenizer, f"{label}\n") for label in labels}
        self.label_of_ids = {tuple(ids): label for label, ids in self.tag_ids.items()}
        self.trie: dict[int | None, Any] = {}
        for ids in self.tag_ids.values():
            node = self.trie
            for i in ids:
                node = node.setdefault(i, {})
            node[None] = {}
        self.counts = GenerationCounts()
        self.generated_tokens = 0
        self.input_tokens = 0
        self.sentences = 0
        self.seconds = 0.0

    def _max_new(self, words: list[list[int]]) -> int:
        longest_tag = max(len(v) for v in self.tag_ids.values())
        need = sum(len(w) + longest_tag for w in words) + 1
        return need if self.constrained else int(need * 1.5) + 8

    @torch.inference_mode()
    def _generate(self, token_lists: Sequence[Sequence[str]]) -> list[tuple[list[str], list[float] | None]]:
        """Tags per sentence, with each word's tag probability under constrained decoding."""
        tok = self.tokenizer
        eos = tok.eos_token_id
        device = next(self.model.parameters()).device
        prompts = [prompt_text(t, self.types) for t in token_lists]
        words = [[piece_ids(tok, f"{w}:") for w in t] for t in token_lists]
        side = tok.padding_side
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True)
        tok.padding_side = side
        max_new = max(self._max_new(w) for w in words)
        chosen: list[list[float]] | None = None
        with autocast(device, self.precision):
            if self.constrained:
                plans = [_Plan(w, self.trie, eos) for w in words]
                gen, chosen = self._decode_constrained(enc, plans, max_new, device)
            else:
                width = enc["input_ids"].shape[1]
                out = self.model.generate(
                    input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                    max_new_tokens=max_new, do_sample=False, num_beams=1, pad_token_id=tok.pad_token_id,
                    eos_token_id=eos)
                gen = [row[width:].tolist() for row in out]
        return self._read(gen, token_lists, words, chosen)

    def _decode_constrained(self, enc: Any, plans: list[_Plan], max_new: int, device: torch.device
                            ) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy constrained decoding with the KV cache.  Only tag choices need the model's output:
        the tokens the constraint forces (each word's pieces and ``:``, the rest of a tag once its
        first tokens fix it) go through the decoder together, as one chunk per row and call, so a
        sentence takes about one decoder call per tag choice instead of one per token; and the
        output layer computes only the allowed rows when a tag is chosen (Gemma 3's 262k-row output
        layer otherwise costs more than the rest of the model per token).  Rows whose chunk is
        shorter are padded and masked, as in any batched generation (pads count toward a sliding
        window, as left padding does).  Same tokens as ``generate`` with the same constraint (argmax
        over the allowed ids, ties to the lowest id), and the chosen token's probability
        renormalised over the allowed ones."""
        from transformers import DynamicCache

        from bioner.models.llm import causal_parts, output_logits

        decoder, head, cap = causal_parts(self.model)
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        mask = enc["attention_mask"].to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        next_position = positions[:, -1] + 1
        cache = DynamicCache(config=self.model.config)
        hidden = decoder(input_ids=enc["input_ids"].to(device), attention_mask=mask, position_ids=positions,
                         cache=cache, use_cache=True).last_hidden_state[:, -1]
        rows = len(plans)
        generated: list[list[int]] = [[] for _ in range(rows)]
        chosen: list[list[float]] = [[] for _ in range(rows)]
        done = [False] * rows
        while not all(done):
            chunks: list[list[int]] = []
            for r in range(rows):
                chunk: list[int] = []
                while not done[r]:
                    allowed = sorted(plans[r].allowed(generated[r]))
                    if len(allowed) == 1:
                        token, p = allowed[0], 1.0
                    elif chunk:
                        break  # a choice needs the hidden state after this chunk
                    else:
                        logp = output_logits(head, hidden[r], cap, torch.tensor(allowed, device=device)).log_softmax(-1)
                        k = int(logp.argmax())
                        token, p = allowed[k], float(logp[k].exp())
                    generated[r].append(token)
                    chosen[r].append(p)
                    chunk.append(token)
                    done[r] = token == eos or len(generated[r]) >= max_new
                chunks.append(chunk)
            if all(done):
                break
            width = max(len(c) for c in chunks)
            ids = torch.full((rows, width), pad, dtype=torch.long)
            new_mask = torch.zeros(rows, width, dtype=mask.dtype)
            for r, chunk in enumerate(chunks):
                ids[r, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
                new_mask[r, : len(chunk)] = 1
            lengths = torch.tensor([max(1, len(c)) for c in chunks], device=device)
            mask = torch.cat([mask, new_mask.to(device)], dim=1)
            step_positions = next_position.unsqueeze(1) + torch.arange(width, device=device)
            out = decoder(input_ids=ids.to(device), attention_mask=mask, position_ids=step_positions,
                          cache=cache, use_cache=True).last_hidden_state
            hidden = out[torch.arange(rows, device=device), lengths - 1]
            next_position = next_position + torch.tensor([len(c) for c in chunks], device=device)
        return generated, chosen

    def _read(self, generated: list[list[int]], token_lists: Sequence[Sequence[str]],
              words: list[list[list[int]]], chosen: list[list[float]] | None
              ) -> list[tuple[list[str], list[float] | None]]:
        """Generated ids (up to EOS) → tags per sentence, with tag probabilities when ``chosen``
        holds each generated token's probability (constrained decoding)."""
        tok = self.tokenizer
        eos = tok.eos_token_id
        results: list[tuple[list[str], list[float] | None]] = []
        for k, tokens in enumerate(token_lists):
            gen = generated[k]
            n_gen = gen.index(eos) + 1 if eos in gen else len(gen)
            self.generated_tokens += n_gen
            self.input_tokens += len(tokens)
            if self.constrained:
                probs = chosen[k][:n_gen] if chosen is not None else [1.0] * n_gen
                results.append(self._read_constrained(gen[:n_gen], words[k], probs))
            else:
                text = tok.decode(gen[:n_gen], skip_special_tokens=True)
                tags, counts = parse_response(text, tokens, set(self.labels))
                self.counts.add(counts)
                results.append((tags, None))
        return results

    def _read_constrained(self, gen: list[int], words: list[list[int]], chosen: list[float]
                          ) -> tuple[list[str], list[float]]:
        """Tags, and each tag's probability: the product over its tokens of the chosen token's
        probability renormalised over the tokens the constraint allowed at that step."""
        tags, probs, pos = [], [], 0
        for w in words:
            pos += len(w)
            for n in range(1, len(gen) - pos + 1):
                label = self.label_of_ids.get(tuple(gen[pos:pos + n]))
                if label is not None:
                    tags.append(label)
                    probs.append(math.prod(chosen[pos:pos + n]))
                    pos += n
                    break
            else:  # ran out of new tokens: cannot happen with the derived budget
                raise RuntimeError("constrained generation ended early; this is a bioner bug")
        return tags, probs

    def predict(self, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        return self.predict_with_scores(token_lists)[0]

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]:
        """Constrained decoding scores each span by the product of its tags' probabilities (the
        chosen tag tokens renormalised over the allowed ones); free generation gives no scores."""
        started = time.perf_counter()
        results: list[list[str]] = [[] for _ in token_lists]
        word_probs: list[list[float]] = [[] for _ in token_lists]
        order = sorted((i for i, t in enumerate(token_lists) if t), key=lambda i: -len(token_lists[i]))
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size]
            for i, (tags, probs) in zip(idx, self._generate([token_lists[i] for i in idx])):
                results[i] = tags
                word_probs[i] = probs or []
        self.sentences += len(order)
        self.seconds += time.perf_counter() - started
        if not self.constrained:
            return results, None
        scores = [{(s.start, s.end): math.prod(p[s.start:s.end]) for s in tags_to_spans(t)}
                  for t, p in zip(results, word_probs)]
        return results, scores

    def report_extra(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "precision": self.precision, "constrained": self.constrained,
            "generation": self.counts.to_dict(),
            "generated_tokens_per_input_token": self.generated_tokens / max(1, self.input_tokens),
            "sentences_per_s": self.sentences / self.seconds if self.seconds else None,
        }


def load_generative(folder: Path, meta: TaggerMeta, labels: list[str], trust_remote_code: bool = False,
                    allow_pickle: bool = False) -> GenerativeTagger:
    from transformers import AutoModelForCausalLM

    from bioner.models.encoder import load_tokenizer
    from bioner.models.llm import prepare_llm_tokenizer

    check_loadable(folder, trust_remote_code, allow_pickle)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, **pretrained_kwargs(trust_remote_code, allow_pickle))
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt weights raise many kinds
        raise ModelError(f"{folder}: cannot load the weights ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    tok = prepare_llm_tokenizer(load_tokenizer(str(folder), trust_remote_code))
    return GenerativeTagger(model, tok, labels, meta.constrained, meta.generation_batch_size)
