"""Aggregate an experiment: the reference study's tables (with mean ± sd over seeds and
bootstrap intervals), paired tests of the best LLM against the best encoder, and plots."""

from __future__ import annotations

import base64
import csv
import html
import json
import statistics
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from bioner.corpus.conll import load_conll, read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.corpus.labels import LENGTH_BUCKETS as BUCKETS
from bioner.corpus.stats import split_stats
from bioner.evaluate import compare
from bioner.experiments.runner import cell_state, cells
from bioner.experiments.spec import ExperimentSpec, dataset_folder_name, out_dir
from bioner.files import atomic_write, write_text_atomic


def collect(spec: ExperimentSpec, spec_path: Path) -> list[dict[str, Any]]:
    root = out_dir(spec, spec_path)
    rows = []
    for cell in cells(spec):
        folder = cell.folder(root)
        if cell_state(folder) != "done":
            continue
        ev = json.loads((folder / "eval_test.json").read_text())
        cost = json.loads((folder / "cost.json").read_text())
        prov = (yaml.safe_load((folder / "config.yaml").read_text()) or {}).get("provenance", {})
        rows.append({
            "dataset": dataset_folder_name(cell.dataset), "tagger": cell.tagger.name, "kind": cell.tagger.kind, "seed": cell.seed,
            "strict_p": ev["overall"]["strict"]["precision"], "strict_r": ev["overall"]["strict"]["recall"],
            "strict_f1": ev["overall"]["strict"]["f1"],
            "relaxed_p": ev["overall"]["partial"]["precision"], "relaxed_r": ev["overall"]["partial"]["recall"],
            "relaxed_f1": ev["overall"]["partial"]["f1"],
            "strict_f1_ci": ev.get("ci", {}).get("strict_f1"),
            **{f"f1_len_{b}": ev["by_length"][b]["strict"]["f1"] for b in BUCKETS},
            "sentences_per_s": cost["sentences_per_s"], "latency_p50_ms": cost["latency_p50_ms"],
            "train_seconds": cost.get("train_seconds"), "params_total": cost["params_total"],
            "run_dir": str(folder), "data_sha256": {k: v["sha256"] for k, v in prov.get("data_files", {}).items()},
            "packages": prov.get("packages", {}),
            "calibration": ev.get("calibration"),
            "ece": (ev.get("calibration") or {}).get("ece"),
        })
    return rows


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["dataset"], r["tagger"]), []).append(r)
    return out


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def tables(rows: list[dict[str, Any]]) -> dict[str, str]:
    groups = _groups(rows)
    main, length, cost = [], [], []
    for (ds, tg), rs in groups.items():
        ci = rs[0]["strict_f1_ci"]
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(rs) == 1 else ""
        main.append([ds, tg, rs[0]["kind"], _mean_sd([r["strict_p"] for r in rs]), _mean_sd([r["strict_r"] for r in rs]),
                     _mean_sd([r["strict_f1"] for r in rs]) + ci_text, _mean_sd([r["relaxed_p"] for r in rs]),
                     _mean_sd([r["relaxed_r"] for r in rs]), _mean_sd([r["relaxed_f1"] for r in rs]), str(len(rs))])
        length.append([ds, tg] + [_mean_sd([r[f"f1_len_{b}"] for r in rs]) for b in BUCKETS])
        cost.append([ds, tg, f"{statistics.mean(r['sentences_per_s'] for r in rs):.1f}",
                     f"{statistics.mean(r['latency_p50_ms'] for r in rs):.1f}",
                     f"{statistics.mean(r['train_seconds'] or 0 for r in rs):.0f}", f"{rs[0]['params_total']:,}"])
    return {
        "Strict and relaxed (partial) precision, recall, F1 on test": _table(
            ["dataset", "tagger", "kind", "strict P", "strict R", "strict F1", "relaxed P", "relaxed R", "relaxed F1", "seeds"], main),
        "Strict F1 by entity length (tokens)": _table(["dataset", "tagger", "1", "2", ">=3"], length),
        "Inference and training cost": _table(
            ["dataset", "tagger", "sentences/s", "latency p50 (ms, batch 1)", "training s", "parameters"], cost),
    }


def paired_tests(spec: ExperimentSpec, rows: list[dict[str, Any]]) -> str:
    body = []
    groups = _groups(rows)
    for ds_spec in spec.datasets:
        ds = Path(ds_spec).name
        scored = [(statistics.mean(r["strict_f1"] for r in rs), tg, rs) for (d, tg), rs in groups.items() if d == ds]
        enc = max((x for x in scored if x[2][0]["kind"] == "encoder"), default=None, key=lambda x: x[0])
        llm = max((x for x in scored if x[2][0]["kind"] != "encoder"), default=None, key=lambda x: x[0])
        if enc is None or llm is None:
            continue
        gold = list(islice(read_conll(resolve_dataset(ds_spec).path("test")), spec.limit_eval))
        pred_llm = load_conll(Path(llm[2][0]["run_dir"]) / "pred_test.conll")
        pred_enc = load_conll(Path(enc[2][0]["run_dir"]) / "pred_test.conll")
        res = compare(gold, pred_llm, pred_enc, n_resamples=spec.report_resamples)
        body.append([ds, llm[1], enc[1], f"{res.f1_a:.4f}", f"{res.f1_b:.4f}", f"{res.delta:+.4f}", f"{res.p_value:.4g}"])
    return _table(["dataset", "best LLM (A)", "best encoder (B)", "F1 A", "F1 B", "A - B", "p (A > B)"], body) if body \
        else "(needs an encoder and an LLM tagger on the same dataset)"


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, dpi=110, format="png")
    plt.close(fig)
    return path


def plots(spec: ExperimentSpec, rows: list[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    groups = _groups(rows)
    for ds in (dataset_folder_name(d) for d in spec.datasets):
        items = [(tg, rs) for (d, tg), rs in groups.items() if d == ds]
        if not items:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for tg, rs in items:
            x = 1000 / statistics.mean(r["sentences_per_s"] for r in rs)
            ax.scatter([x], [statistics.mean(r["strict_f1"] for r in rs)], s=50)
            ax.annotate(tg, (x, statistics.mean(r["strict_f1"] for r in rs)), textcoords="offset points", xytext=(5, 5))
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
        ax.set_xlabel("inference seconds per 1,000 sentences (log)")
        ax.set_ylabel("test strict F1")
        ax.set_title(f"{ds}: accuracy vs inference cost")
        ax.grid(True, alpha=0.3)
        paths.append(_save(plt, fig, out / f"cost_vs_f1_{ds}.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.8 / len(items)
        for k, (tg, rs) in enumerate(items):
            ax.bar([i + k * width for i in range(3)], [statistics.mean(r[f"f1_len_{b}"] for r in rs) for b in BUCKETS],
                   width, label=tg)
        ax.set_xticks([i + width * (len(items) - 1) / 2 for i in range(3)], ["1 token", "2 tokens", ">=3 tokens"])
        ax.set_ylabel("test strict F1")
        ax.set_title(f"{ds}: strict F1 by entity length")
        ax.set_ylim(0, 1.15)
        ax.legend(ncol=2, fontsize="small", loc="upper center")  # above the bars, which end at 1.0
        paths.append(_save(plt, fig, out / f"f1_by_length_{ds}.png"))
        scored = [(tg, rs[0]["calibration"]) for tg, rs in items if rs[0].get("calibration")]
        if scored:  # reliability diagram: does a span scored p come out right p of the time?
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
            for tg, cal in scored:
                bins = [b for b in cal["bins"] if b["n"]]
                ax.plot([b["mean_score"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                        label=f"{tg} (ECE {cal['ece']:.3f})")
            ax.set_xlabel("span score (bin mean)")
            ax.set_ylabel("share of spans exactly right")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(f"{ds}: reliability of span scores (seed {items[0][1][0]['seed']})")
            ax.legend(fontsize="small", loc="upper left")
            paths.append(_save(plt, fig, out / f"reliability_{ds}.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, ds in enumerate(spec.datasets):
        stats = split_stats(islice(read_conll(resolve_dataset(ds).path("test")), spec.limit_eval))
        ax.bar([k * 4 + i for i in range(3)], [stats.share(b) for b in BUCKETS], color=["C0", "C1", "C2"])
    ax.set_xticks([k * 4 + 1 for k in range(len(spec.datasets))], [dataset_folder_name(d) for d in spec.datasets])
    ax.set_ylabel("share of test entities (1 / 2 / >=3 tokens)")
    ax.set_title("Entity-length profile of each test set")
    return paths + [_save(plt, fig, out / "length_profiles.png")]


def _md_to_html(md: str) -> str:
    out, rows = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append([html.escape(c.strip()) for c in line.strip("|").split("|")])
            continue
        if rows:
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in rows[0]) + "</tr>" +
                       "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:]) + "</table>")
            rows = []
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def write_report(spec: ExperimentSpec, spec_path: Path, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(spec, spec_path)
    if not rows:
        raise FileNotFoundError(f"no finished cells under {out_dir(spec, spec_path)}: run the experiment first")
    with atomic_write(out / "results.csv", newline="") as f:
        fields = [k for k in rows[0] if k not in ("packages", "calibration")]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "data_sha256": json.dumps(r["data_sha256"])})
    md = [f"# Experiment {spec.name}", "",
          f"{len(rows)} finished runs; every number traces to its run folder (results.csv: run_dir, data hashes; "
          "each run folder: config.yaml with package versions).", ""]
    for title, table in tables(rows).items():
        md += [f"## {title}", "", table, ""]
    md += ["## Paired test: best LLM vs best encoder (approximate randomization, one-sided)", "",
           paired_tests(spec, rows), ""]
    pngs = plots(spec, rows, out)
    md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    body = _md_to_html("\n".join(line for line in md if not line.startswith("![")))
    imgs = "".join(f'<h3>{html.escape(p.stem)}</h3><img src="data:image/png;base64,'
                   f'{base64.b64encode(p.read_bytes()).decode()}"/>' for p in pngs)
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
    write_text_atomic(out / "report.html", f"<!doctype html><html><head><meta charset='utf-8'><title>"
                      f"{html.escape(spec.name)}</title><style>{style}</style></head><body>{body}{imgs}</body></html>")
    return {"md": out / "report.md", "csv": out / "results.csv", "html": out / "report.html"}
