"""`bioner experiment run/status/report` end to end on a tiny grid."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import bioner, tiny_bert_folder

SPEC = """
name: tiny
out: runs
datasets: [sample, second]
seeds: [7]
limit_train: 40
limit_eval: 20
cost_sentences: 10
taggers:
  - {{name: bert, model: "{bert}", overrides: [train.epochs=1, model.max_subwords=64]}}
  - {{name: llama-cls, kind: llm-cls, model: "tiny:llama", overrides: [train.epochs=1, train.lr=3e-3]}}
"""


def test_tiny_grid_runs_resumes_and_reports(tmp_path: Path) -> None:
    from bioner.corpus.datasets import sample_dir

    second = tmp_path / "second"
    second.mkdir()
    for split in ("train", "dev", "test"):
        (second / f"{split}.txt").write_text((sample_dir() / f"{split}.txt").read_text())
    bert = tiny_bert_folder(tmp_path / "bert")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(bert=bert).replace("second]", f"{second}]"), encoding="utf-8")
    out = bioner("experiment", "run", str(spec))
    assert "4 done, 0 failed" in out.stdout
    status = bioner("experiment", "status", str(spec)).stdout
    assert status.count("| done |") == 4
    # a cell that lost its results (as after a kill) is the only one re-run
    cell = tmp_path / "runs" / "sample" / "bert" / "seed-7"
    (cell / "cost.json").unlink()
    again = bioner("experiment", "run", str(spec)).stdout
    assert again.count("skip") == 3 and "run   sample/bert/seed-7" in again
    rep = bioner("experiment", "report", str(spec)).stdout
    report_dir = tmp_path / "runs" / "report"
    md = (report_dir / "report.md").read_text()
    for title in ("Strict and relaxed", "by entity length", "Inference and training cost", "Paired test"):
        assert title in md
    assert md.count("| sample |") >= 4 and "p (A > B)" in md
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert pngs == ["cost_vs_f1_sample.png", "cost_vs_f1_second.png", "f1_by_length_sample.png",
                    "f1_by_length_second.png", "length_profiles.png", "reliability_sample.png",
                    "reliability_second.png"]  # one reliability diagram per dataset: every tagger is scored
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7
    assert "wrote" in rep and (report_dir / "results.csv").read_text().count("\n") == 5
    cost = json.loads((cell / "cost.json").read_text())
    assert cost["sentences_per_s"] > 0 and cost["params_total"] > 0


def test_malformed_spec_lists_every_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nout: o\ndatasets: []\nseeds: [a]\ntaggers:\n  - {name: a, kind: nope}\n"
                    "  - {name: a, preset: fast, overrides: [lr]}\nextra: 1\n", encoding="utf-8")
    proc = bioner("experiment", "run", str(spec), check=False)
    assert proc.returncode == 1
    for where in ("datasets", "seeds.0", "taggers.0.kind", "extra"):
        assert f"  {where}:" in proc.stderr, where
