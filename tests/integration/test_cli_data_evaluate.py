"""The real CLI (`python -m bioner`) on corpora and prediction files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bioner.corpus.conll import load_conll, write_conll
from bioner.evaluate.noise import perturb_predictions
from tests.helpers import bioner, dataset_split


def stats_md_rows(data_dir: Path) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in (data_dir / "STATS.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[1] in ("train", "dev", "test"):
            rows[(cells[0], cells[1])] = cells
    return rows


def test_data_stats_agree_with_stats_md_for_every_dataset(data_dir: Path) -> None:
    rows = stats_md_rows(data_dir)
    assert len(rows) >= 27
    names = sorted({name for name, _ in rows})
    for name in names:
        out = json.loads(bioner("data", "stats", name, "--format", "json",
                                env={"BIONER_DATA_DIR": str(data_dir)}).stdout)
        for split, s in out["splits"].items():
            cells = rows[(name, split)]
            types = ", ".join(f"{t} ({n})" for t, n in s["types"].items())
            shares = [f"{100 * s['length_shares'][b]:.1f}%" for b in ("1", "2", "3+")]
            mine = [name, split, str(s["sentences"]), str(s["tokens"]), str(s["entities"]), types,
                    *shares, str(s["max_entity_length"])]
            assert mine == cells, (name, split)
            assert s["bio_repairs"]["total"] == 0


def test_data_stats_markdown_for_the_bundled_sample() -> None:
    out = bioner("data", "stats", "sample").stdout
    assert re.search(r"\| sample \| train \| 240 \|", out)


def test_validate_lists_problems_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_text("a\tO\nb\tI-Gene\n\nc\tB-X\tY\n", encoding="utf-8")
    proc = bioner("data", "validate", str(bad), check=False)
    assert proc.returncode == 1
    assert f"{bad}:2: invalid IOB2" in proc.stdout
    assert f"{bad}:4: expected 2 columns" in proc.stdout
    good = tmp_path / "good.conll"
    good.write_text("a\tB-X\n\n", encoding="utf-8")
    assert bioner("data", "validate", str(good)).stdout.strip() == f"{good}: ok"


def test_malformed_file_fails_with_path_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_bytes(b"a\tO\nb\xff\tO\n")
    proc = bioner("evaluate", "--gold", str(bad), "--pred", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {bad}:2: non-UTF-8 bytes")
    assert "Traceback" not in proc.stderr


def test_evaluate_files_json_shape_bootstrap_and_paired(data_dir: Path, tmp_path: Path) -> None:
    gold_path = dataset_split(data_dir, "BC5CDR", "test")
    gold = load_conll(gold_path)[:800]
    g = tmp_path / "gold.conll"
    write_conll(gold, g)
    good, bad = tmp_path / "a.conll", tmp_path / "b.conll"
    write_conll(perturb_predictions(gold, 0.05, 1, ["Chemical", "Disease"]), good)
    write_conll(perturb_predictions(gold, 0.15, 2, ["Chemical", "Disease"]), bad)
    report = json.loads(bioner("evaluate", "--gold", str(g), "--pred", str(good), "--format", "json",
                               "--bootstrap", "200").stdout)
    assert set(report["overall"]) == {"strict", "exact", "partial", "type"}
    assert set(report["per_type"]) == {"Chemical", "Disease"}
    assert set(report["by_length"]) == set(report["by_length_paper"]) == {"1", "2", "3+"}
    lo, hi = report["ci"]["strict_f1"]
    assert lo < report["overall"]["strict"]["f1"] < hi
    assert report["n_sentences"] == 800
    paired = json.loads(bioner("evaluate", "--gold", str(g), "--pred", str(good), "--pred", str(bad),
                               "--paired", "--resamples", "2000", "--format", "json").stdout)
    assert paired["delta"] > 0 and paired["p_value"] < 0.01
    md = bioner("evaluate", "--gold", str(g), "--pred", str(good)).stdout
    assert "| strict |" in md and "| 3+ |" in md


def test_evaluate_token_mismatch_names_the_sentence(tmp_path: Path) -> None:
    g, p = tmp_path / "g.conll", tmp_path / "p.conll"
    g.write_text("a\tO\nb\tO\n\nc\tO\n\n", encoding="utf-8")
    p.write_text("a\tO\nb\tO\n\nd\tO\n\n", encoding="utf-8")
    proc = bioner("evaluate", "--gold", str(g), "--pred", str(p), check=False)
    assert proc.returncode == 1
    assert "sentence 2: tokens differ at token 1" in proc.stderr and f"{g}:4" in proc.stderr
