#!/usr/bin/env python3
"""Corpus-scale tagging: documents/s single process vs Ray Data with 1 and 2 workers, and a
projection for PubMed.

    python bench/corpus_scale.py --model RUN_DIR [--abstracts 2000] [--backends torch,onnx]

Abstracts are built from the shared corpora's train and dev sentences (10 sentences each, BC5CDR,
NCBI-disease, BC2GM, JNLPBA), written as four JSONL files.  Every configuration tags all of
them with 1 torch thread per worker, timed end to end (model loading included, Ray already
started — its start-up is reported apart).  ``onnx`` uses the run's int8 export (made in a
temporary copy of the run when it has none).  bf16 runs only where the CPU has native bf16 (AMX or AVX512-BF16).

Bars (torch fp32): Ray with 2 workers ≥ 1.3× Ray with 1 worker; Ray with 1 worker at most 25%
slower than the single process.  The PubMed figure is a projection from the measured
per-worker rate (linear scaling assumed), not a run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_table, use_shared_data

PUBMED_ABSTRACTS = 38_000_000
CORPORA = ("BC5CDR", "NCBI-disease", "BC2GM", "JNLPBA")


def build_inputs(folder: Path, n: int) -> list[Path]:
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset

    per_file = -(-n // len(CORPORA))
    paths = []
    for name in CORPORA:
        splits = resolve_dataset(name).splits
        sents = [" ".join(s.tokens) for split in ("train", "dev") if split in splits for s in read_conll(splits[split])]
        docs = [" ".join(sents[k:k + 10]) for k in range(0, len(sents) - 9, 10)][:per_file]
        if len(docs) < per_file:
            raise SystemExit(f"{name} train+dev has only {len(docs)} abstracts of 10 sentences")
        path = folder / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as out:
            for k, text in enumerate(docs):
                out.write(json.dumps({"id": f"{name}-{k}", "text": text}) + "\n")
        paths.append(path)
    return paths


def single_process(model: Path, inputs: list[Path], out: Path, backend: str, precision: str) -> tuple[float, dict]:  # type: ignore[type-arg]
    """What `bioner predict` does over every file, in a fresh process with 1 thread (interpreter
    and library start-up counted, as Ray's actors count theirs); timed from here."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--single", str(model), str(out), backend, precision,
                    *map(str, inputs)], check=True)
    seconds = time.perf_counter() - start
    spans = {}
    for path in inputs:
        for line in open(out / path.name, encoding="utf-8"):
            rec = json.loads(line)
            spans[rec["id"]] = [(s["start"], s["end"], s["label"]) for s in rec["spans"]]
    return seconds, spans


def single_main(model: str, out: str, backend: str, precision: str, *inputs: str) -> int:
    from bioner.cli import quiet_libraries
    from bioner.corpus.formats import read_documents, write_jsonl
    from bioner.models import load_tagger

    quiet_libraries()
    tagger = load_tagger(model, threads=1, backend=backend, precision=precision)
    Path(out).mkdir()
    for path in map(Path, inputs):
        write_jsonl(tagger.tag_documents(read_documents(path, "jsonl")), Path(out) / path.name)
    return 0


def ray_run(model: Path, inputs: list[Path], out: Path, backend: str, precision: str, workers: int) -> tuple[float, dict]:  # type: ignore[type-arg]
    from bioner.scale.corpus import read_shards, tag_corpus

    result = tag_corpus(model, [str(p) for p in inputs], out, workers=workers, threads_per_worker=1,
                        batch_docs=32, backend=backend, precision=precision, progress=False)
    spans = {d.id: [(s.start, s.end, s.label) for s in d.spans] for d in read_shards(out)}
    return result.seconds, spans


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--abstracts", type=int, default=2000)
    ap.add_argument("--backends", default="torch,onnx")
    args = ap.parse_args()
    use_shared_data()
    import ray
    import torch

    from bioner.cli import quiet_libraries
    from bioner.models.onnx_backend import find_onnx
    from bioner.models.runtime import has_fast_bf16

    quiet_libraries()
    work = Path(tempfile.mkdtemp(prefix="bioner-corpus-scale-"))
    rows: list[tuple[str, str, str]] = []
    failed = False
    try:
        (work / "in").mkdir()
        inputs = build_inputs(work / "in", args.abstracts)
        n_docs = sum(1 for p in inputs for _ in open(p, encoding="utf-8"))
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        rows.append(("Ray start-up (local, 2 CPUs)", f"{time.perf_counter() - started:.1f} s", "not timed below"))
        configs = []
        for backend in args.backends.split(","):
            if backend == "torch":
                configs.append(("torch fp32", args.model, "torch", "fp32"))
                if has_fast_bf16(torch.device("cpu")):
                    configs.append(("torch bf16", args.model, "torch", "bf16"))
                else:
                    rows.append(("torch bf16", "skipped: this CPU has no native bf16 (AMX or AVX512-BF16)", "-"))
            elif backend == "onnx":
                model = args.model
                existing = find_onnx(args.model / "model", prefer_int8=True)
                if existing is None or "int8" not in existing.name:  # export into a copy, not the user's run
                    model = work / "run-int8"
                    shutil.copytree(args.model, model, ignore=shutil.ignore_patterns("checkpoint*", ".lock"))
                    subprocess.run([sys.executable, "-m", "bioner", "export", "--model", str(model), "--onnx", "--int8"],
                                   check=True, capture_output=True)
                configs.append(("ONNX int8", model, "onnx", "fp32"))
        per_worker_rate = None
        for label, model, backend, precision in configs:
            single_s, single_spans = single_process(model, inputs, work / f"single-{backend}-{precision}", backend,
                                                    precision)
            r1_s, r1_spans = ray_run(model, inputs, work / f"ray1-{backend}-{precision}", backend, precision, 1)
            r2_s, r2_spans = ray_run(model, inputs, work / f"ray2-{backend}-{precision}", backend, precision, 2)
            same = single_spans == r1_spans == r2_spans
            agree = sum(single_spans[k] == r2_spans.get(k) for k in single_spans) / len(single_spans)
            overhead = r1_s / single_s - 1
            speedup = r1_s / r2_s
            rows += [
                (f"{label}: single process, 1 thread", f"{n_docs / single_s:.1f} documents/s ({single_s:.0f} s)", "-"),
                (f"{label}: Ray, 1 worker", f"{n_docs / r1_s:.1f} documents/s (overhead {overhead:+.0%})",
                 "≤ +25%" if label == "torch fp32" else "-"),
                (f"{label}: Ray, 2 workers", f"{n_docs / r2_s:.1f} documents/s ({speedup:.2f}× 1 worker)",
                 "≥ 1.30×" if label == "torch fp32" else "-"),
                (f"{label}: same spans in all three", f"{same} ({agree:.4f} of documents single = Ray 2)",
                 "True" if backend == "torch" else "- (int8 activation ranges depend on the batch)"),
            ]
            if backend == "torch":
                failed |= not same
            if label == "torch fp32":
                failed |= overhead > 0.25 or speedup < 1.3
            rate = n_docs / r2_s / 2
            per_worker_rate = max(per_worker_rate or 0.0, rate)
            for workers in (1, 16, 64):
                rows.append((f"{label}: PubMed ({PUBMED_ABSTRACTS / 1e6:.0f}M abstracts) on {workers} CPU workers "
                             "(projection)", f"{PUBMED_ABSTRACTS / (rate * workers) / 3600:,.1f} h", "-"))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"corpus: {args.abstracts} abstracts of 10 sentences from {', '.join(CORPORA)} (train+dev text, labels unused)")
    print_table(rows)
    print("projection: measured documents/s per worker (Ray, 2 workers) × workers; real clusters add I/O and "
          "scheduling costs and gain from bigger batches on more threads")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(single_main(*sys.argv[2:]) if sys.argv[1:2] == ["--single"] else main())
