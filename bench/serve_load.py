#!/usr/bin/env python3
"""Load test of `bioner serve` on loopback: does batching pay for HTTP?

A live `bioner serve` (own process, 127.0.0.1) gets N requests from an async client at a fixed
concurrency: a mix of one-sentence texts and whole abstracts built from BC5CDR test.  Then the
same texts go through ``Tagger.tag_documents`` in this process, and the two throughputs are
compared.  Bars:
  * 0 errors;
  * server throughput >= 0.7x in-process tagging of the same texts (sentences/s);
  * server peak RSS <= 1.5 GB;
  * a 2 MB body gets 413 and the server's memory does not jump (< 20 MB).

    python bench/serve_load.py --model runs/bench-encoder-BC5CDR [--requests 2000 --concurrency 32]

Prints a table and exits 1 when a bar is missed.  Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import have_run, print_table, use_shared_data

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def workload(n: int) -> list[str]:
    """One-sentence texts and abstract-sized texts (10 consecutive sentences), alternating 3:1."""
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset

    singles = [" ".join(s.tokens) for s in read_conll(resolve_dataset("BC5CDR").path("test"))]
    abstracts = [" ".join(singles[k:k + 10]) for k in range(0, len(singles) - 10, 10)]
    out = []
    for i in range(n):
        out.append(abstracts[i % len(abstracts)] if i % 4 == 3 else singles[i % len(singles)])
    return out


async def hammer(url: str, texts: list[str], concurrency: int) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in texts:
        queue.put_nowait(t)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            try:
                resp = await client.post(url + "/v1/tag", json={"text": text})
                if resp.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "bench-encoder-BC5CDR")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--max-batch-tokens", type=int, default=4096)
    ap.add_argument("--backend", default="torch")
    args = ap.parse_args()
    use_shared_data()
    if not have_run(args.model):
        return 1
    import httpx

    from bioner.cli import quiet_libraries
    from bioner.corpus.documents import Document
    from bioner.corpus.text import text_to_sentences
    from bioner.models import load_tagger

    quiet_libraries()
    texts = workload(args.requests)
    n_sentences = sum(len(text_to_sentences(t)) for t in texts)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "bioner", "serve", "--model", f"m={args.model}", "--port",
                               str(port), "--backend", args.backend, "--max-wait-ms", str(args.max_wait_ms),
                               "--max-batch-tokens", str(args.max_batch_tokens), "--max-queue", "100000"],
                              stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        asyncio.run(hammer(url, texts[:64], min(8, args.concurrency)))  # warm-up
        latencies, errors, seconds = asyncio.run(hammer(url, texts, args.concurrency))
        peak = rss_mb(server.pid, "VmHWM")
        before = rss_mb(server.pid)
        big = httpx.post(url + "/v1/tag", content=b'{"text": "' + b"a" * (2 * 2**20) + b'"}',
                         headers={"Content-Type": "application/json"}, timeout=60)
        jump = rss_mb(server.pid) - before
        metrics = httpx.get(url + "/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    calls = next((float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith('bioner_batch_requests_count{model="m"}')), float("nan"))

    tagger = load_tagger(args.model, backend=args.backend)
    list(tagger.tag_documents([Document(str(i), t) for i, t in enumerate(texts[:64])]))  # warm-up
    started = time.perf_counter()
    list(tagger.tag_documents([Document(str(i), t) for i, t in enumerate(texts)]))
    direct = time.perf_counter() - started

    lat = sorted(latencies)
    q = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    served_rate, direct_rate = n_sentences / seconds, n_sentences / direct
    rows = [
        ("requests (concurrency)", f"{len(texts)} ({args.concurrency})", ""),
        ("errors", str(errors), "0"),
        ("latency p50 / p95 / p99", f"{q(0.5):.0f} / {q(0.95):.0f} / {q(0.99):.0f} ms", ""),
        ("mean latency", f"{1000 * statistics.mean(lat):.0f} ms", ""),
        ("server: requests/s, sentences/s", f"{len(texts) / seconds:.1f}, {served_rate:.1f}", ""),
        ("model calls (requests per call)", f"{calls:.0f} ({len(texts) / calls:.1f})", ""),
        ("in-process tag_documents: sentences/s", f"{direct_rate:.1f}", ""),
        ("server / in-process", f"{served_rate / direct_rate:.2f}x", ">= 0.7x"),
        ("server peak RSS", f"{peak:.0f} MB", "<= 1536 MB"),
        ("2 MB body", f"{big.status_code}, RSS +{jump:.1f} MB", "413, < 20 MB"),
    ]
    print_table(rows)
    missed = [name for name, bad in (("errors", errors > 0), ("throughput", served_rate / direct_rate < 0.7),
                                     ("peak RSS", peak > 1536), ("2 MB body", big.status_code != 413 or jump >= 20))
              if bad]
    if missed:
        print("BARS MISSED: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
