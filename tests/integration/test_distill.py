"""`bioner distill`: teachers' distributions, leakage filtering, resumable pseudo-labels, the
distillation loss and the student's run folder — with tiny random models on the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bioner.config import build_config
from bioner.corpus.conll import read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.errors import ConfigError
from tests.helpers import bioner, tiny_bert_folder, tiny_run_folder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distill")
    sample = resolve_dataset("sample")
    train = list(read_conll(sample.path("train")))
    test = list(read_conll(sample.path("test")))
    # unlabelled text: 10 sentences that are in the test split (must be dropped), 3 repeated ones,
    # and train sentences shuffled into new "documents" (their tags are never read)
    lines = [" ".join(s.tokens) for s in test[:10]]
    lines += [" ".join(s.tokens) for s in train[:150]]
    lines += lines[-3:]
    (root / "unlabeled.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "root": root,
        "crf_teacher": tiny_run_folder(root / "t-crf", LABELS, crf=True, seed=1),
        "soft_teacher": tiny_run_folder(root / "t-soft", LABELS, crf=False, seed=2),
        "student": tiny_bert_folder(root / "student-base"),
        "unlabeled": root / "unlabeled.txt",
    }


def _config(setup: dict[str, Path], teachers: list[Path], **distill: object) -> object:
    return build_config("cpu", flags={
        "data": {"dataset": "sample", "limit_train": 60},
        "model": {"name": str(setup["student"]), "max_subwords": 64, "stride": 16, "word_shape": False},
        "train": {"epochs": 1, "test_bootstrap": 0, "threads": 1},
        "distill": {"teachers": [str(t) for t in teachers], "unlabeled": [str(setup["unlabeled"])], **distill},
    })


def test_word_distributions(setup: dict[str, Path]) -> None:
    from bioner.models import load_tagger
    from bioner.models.base import Tagger

    sents = [s.tokens for s in list(read_conll(resolve_dataset("sample").path("dev")))[:12]]
    for name in ("crf_teacher", "soft_teacher"):
        tagger = load_tagger(setup[name], backend="torch")
        dists = tagger.word_distributions(sents)
        tags = tagger.predict(sents)
        assert [d.shape for d in dists] == [(len(s), len(LABELS)) for s in sents]
        for d, t in zip(dists, tags):
            assert torch.allclose(d.sum(-1), torch.ones(len(t)), atol=1e-5)
        if name == "soft_teacher":  # softmax: the argmax is the predicted tag
            assert [[LABELS[i] for i in d.argmax(-1).tolist()] for d in dists] == tags
        else:  # CRF marginals: a softer temperature spreads the mass
            hot = tagger.word_distributions(sents, temperature=3.0)
            assert float(hot[0].max(-1).values.mean()) < float(dists[0].max(-1).values.mean())
        one_hot = Tagger.word_distributions(tagger, sents[:2])  # what generative teachers give
        assert [[LABELS[i] for i in d.argmax(-1).tolist()] for d in one_hot] == tags[:2]
        assert all(float(d.max()) == 1.0 and float(d.sum()) == len(d) for d in one_hot)


def test_pseudo_labels_drop_held_out_sentences_average_teachers_and_resume(setup: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    from bioner.models import load_tagger
    from bioner.recipes.distill import pseudo_label, sentence_key
    from bioner.recipes.pseudo import MANIFEST, PSEUDO, load_pseudo

    cfg = _config(setup, [setup["crf_teacher"], setup["soft_teacher"]], chunk_sentences=40, temperature=2.0)
    sample = resolve_dataset("sample")
    held_out = {sentence_key(s.tokens) for split in ("dev", "test") for s in read_conll(sample.path(split))}
    stats = pseudo_label(cfg, tmp_path, LABELS, held_out)  # type: ignore[arg-type]
    assert stats.dropped_in_dev_or_test == 10 and stats.duplicates == 3 and stats.kept == 150
    tokens, dists = load_pseudo(tmp_path)
    assert len(tokens) == 150 and all(len(t) == len(d) for t, d in zip(tokens, dists))
    assert not ({sentence_key(t) for t in tokens} & held_out)
    teachers = [load_tagger(setup[k], backend="torch") for k in ("crf_teacher", "soft_teacher")]
    want = [(a + b) / 2 for a, b in zip(*(t.word_distributions(tokens[:40], 2.0) for t in teachers))]
    assert all(torch.allclose(d, w, atol=2e-3) for d, w in zip(dists[:40], want))  # stored as float16

    # interrupted after two chunks: a rerun recomputes only what is missing
    folder = tmp_path / PSEUDO
    manifest = json.loads((folder / MANIFEST).read_text())
    assert len(manifest["chunks"]) == 4
    kept = {f.name: f.stat().st_mtime_ns for f in folder.glob("part-0000[01].*")}
    for name in ("part-00002", "part-00003"):
        (folder / f"{name}.safetensors").unlink()
        (folder / f"{name}.jsonl").unlink()
    manifest["chunks"], manifest["complete"] = manifest["chunks"][:2], False
    (folder / MANIFEST).write_text(json.dumps(manifest))
    again = pseudo_label(cfg, tmp_path, LABELS, held_out)  # type: ignore[arg-type]
    assert again.kept == 150
    assert {f.name: f.stat().st_mtime_ns for f in folder.glob("part-0000[01].*")} == kept
    tokens2, dists2 = load_pseudo(tmp_path)
    assert tokens2 == tokens and all(torch.equal(a, b) for a, b in zip(dists, dists2))

    other = _config(setup, [setup["soft_teacher"]], chunk_sentences=40)
    with pytest.raises(ConfigError, match="other teachers"):
        pseudo_label(other, tmp_path, LABELS, held_out)  # type: ignore[arg-type]


def test_distillation_loss_adds_the_kl_term(setup: dict[str, Path], tmp_path: Path) -> None:
    from bioner.recipes.distill import pseudo_label
    from bioner.recipes.tasks import DistillTask

    cfg = _config(setup, [setup["soft_teacher"]], alpha=0.7, temperature=2.0, limit_unlabeled=20)
    pseudo_label(cfg, tmp_path, LABELS, set())  # type: ignore[arg-type]
    sample = resolve_dataset("sample")
    gold = list(read_conll(sample.path("train")))[:8]
    torch.manual_seed(0)
    task = DistillTask(cfg, LABELS, "fp32", tmp_path)  # type: ignore[arg-type]
    examples = task.examples(gold)
    soft = [e for e in examples if getattr(e, "soft", None) is not None]
    assert len(soft) == 20 and len(examples) == 28
    batch = task.collate(examples[:4] + soft[:4])
    assert batch["soft_mask"][:4].sum() == 0 and batch["soft_mask"][4:].sum() > 0
    task.module.eval()
    logits = task.model.emissions(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    hard = task.model.loss(batch, logits)
    m = batch["soft_mask"]
    kl = torch.nn.functional.kl_div((logits[m] / 2.0).log_softmax(-1), batch["soft"][m].clamp(min=1e-8),
                                    reduction="batchmean")
    assert float(task.loss(batch)) == pytest.approx(float(hard + 0.7 * 4.0 * kl), rel=1e-5)
    assert float(kl) > 0


def test_distill_command_leaves_an_ordinary_run_folder(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "student"
    proc = bioner("distill", "--teacher", str(setup["crf_teacher"]), "--teacher", str(setup["soft_teacher"]),
                  "--unlabeled", str(setup["unlabeled"]), "--dataset", "sample", "--student", str(setup["student"]),
                  "--out", str(out), "--epochs", "1", "--limit-train", "60", "model.max_subwords=64",
                  "model.stride=16", "model.word_shape=false", "train.test_bootstrap=0", "train.threads=1")
    assert "pseudo-labelled 150 sentences (10 dropped as dev/test sentences, 3 duplicates" in proc.stdout
    report = json.loads((out / "distill.json").read_text())
    assert report["pseudo_labelling"]["kept"] == 150 and len(report["teachers"]) == 2
    assert "distill:" in (out / "config.yaml").read_text()
    assert (out / "eval_test.json").is_file()
    pred = bioner("predict", "--model", str(out), "--text", "Aspirin causes ulcers.")
    assert json.loads(pred.stdout)["text"] == "Aspirin causes ulcers."
    bad = bioner("distill", "--teacher", str(tmp_path / "nope"), "--unlabeled", str(setup["unlabeled"]),
                 "--dataset", "sample", "--out", str(tmp_path / "s2"), check=False)
    assert bad.returncode == 1 and "nope" in bad.stderr


def test_invalid_argmax_tags_are_repaired_for_a_crf_student(setup: dict[str, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A word-wise argmax can put I- after O; a CRF student cannot score that, so it becomes B-."""
    import bioner.recipes.tasks as tasks_module
    from bioner.recipes.tasks import DistillTask

    cfg = _config(setup, [setup["soft_teacher"]])
    dist = torch.zeros(3, len(LABELS))
    dist[0, 0] = dist[1, LABELS.index("I-Chemical")] = dist[2, 0] = 1.0  # O I-Chemical O
    monkeypatch.setattr(tasks_module, "load_pseudo", lambda run_dir: ([["the", "aspirin", "dose"]], [dist]))
    task = DistillTask(cfg, LABELS, "fp32", tmp_path)  # type: ignore[arg-type]
    assert task.config.model.crf  # the cpu preset's encoder recipe
    pseudo = task.examples([])[-1]
    labelled = [label for label in pseudo.labels if label >= 0]
    assert labelled == [0, LABELS.index("B-Chemical"), 0]
