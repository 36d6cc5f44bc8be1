"""Tag whole corpora on Ray Data: one shard out per input file, resumable, exactly once.

The pipeline is ``input files → parse (Ray tasks) → tag (an actor pool: each actor loads the
tagger once) → the driver writes one shard per input file``.  Ray Data keeps the order of the
rows, so a file's shard is complete when the next file's rows start; each shard is written to
a temporary file and renamed, and only then recorded in ``manifest.json``.  A rerun skips the
inputs the manifest lists (same content hash, shard present) and recomputes the rest; a crashed
actor is restarted by Ray and its batches retried, and every row carries ``(file, seq, n)`` so
the driver proves each input document came out exactly once.

Local by default (``ray.init`` on this machine); ``address`` or ``RAY_ADDRESS`` joins a cluster,
whose nodes need bioner installed and the model folder at the same path.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bioner.corpus.documents import Document, TextSpan
from bioner.corpus.formats import document_record, read_documents
from bioner.errors import BionerError, CorpusFormatError, InputError
from bioner.files import (
    RunLock,
    atomic_write,
    check_output,
    file_sha256,
    write_text_atomic,
)
from bioner.models.folder import model_fingerprint

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
OUTPUT_FORMATS = ("jsonl", "parquet")
BLOCK_BYTES = 256 * 1024
INSTALL_HINT = 'tag-corpus runs on Ray Data: pip install -e ".[scale]" (or pip install "ray[data]" pyarrow)'


@dataclass(slots=True)
class CorpusResult:
    """What a run did: inputs tagged now and skipped as already done, and the counts."""

    output: Path
    tagged_inputs: int = 0
    skipped_inputs: int = 0
    documents: int = 0
    sentences: int = 0
    spans: int = 0
    seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"tagged {self.documents} documents ({self.sentences} sentences, {self.spans} spans) from "
                f"{self.tagged_inputs} input files in {self.seconds:.1f} s: {self.docs_per_second:.1f} documents/s; "
                f"each input document checked to come back exactly once; skipped {self.skipped_inputs} input "
                f"files already done; output {self.output}")


def require_ray() -> Any:
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data
    except ImportError:
        raise BionerError(INSTALL_HINT) from None
    return ray


# ---------------------------------------------------------------- inputs and the manifest


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Glob patterns (or plain paths) → sorted, distinct files; a pattern matching nothing is an error."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if not Path(m).name.startswith(".")]
        if not matches or not Path(matches[0]).exists():
            raise InputError(f"--input {pattern!r} matches no file")
        for m in matches:
            path = Path(m)
            if path.is_dir():
                raise InputError(f"--input {m} is a folder; give files (a pattern such as '{m}/*.jsonl')")
            found.setdefault(str(path.resolve()), path.resolve())
    return [found[k] for k in sorted(found)]


def shard_name(path: Path, fmt: str) -> str:
    """Stable per input: its stem plus a short hash of its absolute path (stems may repeat across folders)."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem)
    return f"{stem}-{digest}.{fmt}"


def read_manifest(out_dir: Path, model_id: str, fmt: str) -> dict[str, Any]:
    path = out_dir / MANIFEST
    if not path.is_file():
        return {"model": model_id, "format": fmt, "inputs": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BionerError(f"{path} is not valid JSON ({exc}); move it away to start the corpus again") from None
    if manifest.get("model") != model_id:
        raise BionerError(f"{out_dir} was tagged with another model; use a new --output (or delete {path} "
                          "to tag everything again)")
    if manifest.get("format") != fmt:
        raise BionerError(f"{out_dir} holds {manifest.get('format')} shards; rerun with --format "
                          f"{manifest.get('format')} or use a new --output")
    return manifest


# ---------------------------------------------------------------- Ray stages (run in workers)


def parse_file(row: dict[str, Any], fmt: str | None) -> Iterator[dict[str, Any]]:
    """One input file → its documents as rows ``(file, seq, n, id, text)``; ``n`` lets the driver
    check that every document comes out exactly once."""
    path = Path(row["path"])
    if (fmt or "").lower() == "parquet" or (fmt is None and path.suffix.lower() == ".parquet"):
        docs = list(_read_parquet(path))
    else:
        docs = list(read_documents(path, fmt))
    for seq, doc in enumerate(docs):
        yield {"file": row["file"], "seq": seq, "n": len(docs), "id": doc.id, "text": doc.text}


def _read_parquet(path: Path) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        raise CorpusFormatError(path, 0, f"not a readable Parquet file ({exc})") from None
    missing = [c for c in ("id", "text") if c not in table.column_names]
    if missing:
        raise CorpusFormatError(path, 0, f"Parquet input needs columns 'id' and 'text'; missing {', '.join(missing)} "
                                f"(has {', '.join(table.column_names)})")
    for k, (doc_id, text) in enumerate(zip(table.column("id").to_pylist(), table.column("text").to_pylist())):
        if not isinstance(text, str):
            raise CorpusFormatError(path, k + 1, f"row {k + 1}: 'text' must be a string, got {type(text).__name__}")
        yield Document(str(doc_id), text)


class TagActor:
    """Loads the tagger once per actor; tags a batch of documents; spans travel as JSON.

    Settings ride on a subclass (:func:`actor_class`), not as constructor arguments: Ray keeps
    those in the object store and warns that a restarted actor may not find them."""

    settings: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        from bioner.models.loading import load_tagger
        from bioner.models.runtime import settle_heap

        self.tagger = load_tagger(**self.settings)
        settle_heap()  # one model per worker process, then tagging for long

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        docs = [Document(str(i), str(t)) for i, t in zip(batch["id"], batch["text"])]
        before = self.tagger.sentences_tagged
        tagged = list(self.tagger.tag_documents(docs))
        spans = [json.dumps([s.to_dict() for s in d.spans], ensure_ascii=False) for d in tagged]
        sentences = [0] * len(tagged)
        if tagged:
            sentences[0] = self.tagger.sentences_tagged - before  # the batch's count, carried on one row
        return {"file": batch["file"], "seq": batch["seq"], "n": batch["n"], "id": batch["id"],
                "text": batch["text"], "spans": spans, "sentences": sentences}


def actor_class(model: Path, backend: str, precision: str | None, threads: int) -> type[TagActor]:
    settings = {"path": str(model.resolve()), "backend": backend, "precision": precision, "threads": threads}
    return type("TagActor", (TagActor,), {"settings": settings})


# ---------------------------------------------------------------- the driver


def tag_corpus(model: Path, inputs: list[str], output: Path, fmt: str = "jsonl", from_format: str | None = None,
               address: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
               gpus_per_worker: float = 0.0, batch_docs: int = 64, backend: str = "auto",
               precision: str | None = None, progress: bool | None = None) -> CorpusResult:
    """Tag every document of ``inputs`` into ``output`` (one shard per input file); see the module doc."""
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"--format {fmt!r}: one of {', '.join(OUTPUT_FORMATS)}")
    for name, value, low in (("--workers", workers, 1), ("--batch-docs", batch_docs, 1),
                             ("--threads-per-worker", threads_per_worker, 1)):
        if value is not None and value < low:
            raise InputError(f"{name} {value}: at least {low}")
    if gpus_per_worker < 0:
        raise InputError(f"--gpus-per-worker {gpus_per_worker}: not negative")
    ray = require_ray()
    files = expand_inputs(inputs)
    for f in files:
        check_output(output / MANIFEST, [f])
        if output.resolve() in f.parents:
            raise InputError(f"--input {f} lies inside the output folder {output}; tag into another folder")
    model_id = model_fingerprint(model)
    started = time.perf_counter()
    with RunLock(output):
        manifest = read_manifest(output, model_id, fmt)
        done = manifest["inputs"]
        result = CorpusResult(output)
        pending: list[tuple[Path, str]] = []
        for f in files:
            sha = file_sha256(f)
            entry = done.get(str(f))
            if entry and entry.get("sha256") == sha and (output / entry["shard"]).is_file():
                result.skipped_inputs += 1
            else:
                done.pop(str(f), None)
                pending.append((f, sha))
        if pending:
            started_ray = not ray.is_initialized()
            if started_ray:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            try:
                _run(ray, model, pending, output, fmt, from_format, workers, threads_per_worker, gpus_per_worker,
                     batch_docs, backend, precision, manifest, result, progress)
            finally:
                if started_ray:
                    ray.shutdown()
    result.seconds = time.perf_counter() - started
    return result


def _run(ray: Any, model: Path, pending: list[tuple[Path, str]], output: Path, fmt: str, from_format: str | None,
         workers: int | None, threads: int, gpus: float, batch_docs: int, backend: str, precision: str | None,
         manifest: dict[str, Any], result: CorpusResult, progress: bool | None) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # a file's shard is complete when the next file starts
    ctx.enable_progress_bars = sys.stderr.isatty() if progress is None else progress
    # small blocks: a big input file (a PubMed baseline file holds 30,000 abstracts) is spread over
    # the actors instead of going to one of them whole
    ctx.target_max_block_size = BLOCK_BYTES
    if not ctx.enable_progress_bars:
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and progress lines otherwise
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    items = [{"file": k, "path": str(p)} for k, (p, _) in enumerate(pending)]
    ds = (ray.data.from_items(items, override_num_blocks=len(items))
          # parsing takes no CPU reservation: actors holding every CPU would otherwise starve it forever
          .flat_map(parse_file, fn_kwargs={"fmt": from_format}, num_cpus=0)
          .map_batches(actor_class(model, backend, precision, threads), batch_size=batch_docs,
                       compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
                       num_gpus=gpus or None))
    writer = _ShardWriter(output, fmt, pending, manifest, result)
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")  # one small input: expected
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            writer.add(batch.to_pylist())
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's error; show the bioner one
        raise _user_error(exc) from None
    writer.finish()


def _user_error(exc: BaseException) -> BaseException:
    """The bioner error behind Ray's wrappers (a bad input file, a model that does not load)."""
    seen: BaseException | None = exc
    while seen is not None:
        cause = getattr(seen, "cause", None)  # a RayTaskError's original exception
        if isinstance(cause, BionerError):
            return cause
        if isinstance(seen, BionerError):
            return seen
        seen = seen.__cause__ or (cause if isinstance(cause, BaseException) else None)
    return exc


class _ShardWriter:
    """Collects one input file's rows (in order), checks them and writes its shard atomically."""

    def __init__(self, output: Path, fmt: str, pending: list[tuple[Path, str]], manifest: dict[str, Any],
                 result: CorpusResult) -> None:
        self.output, self.fmt, self.pending, self.manifest, self.result = output, fmt, pending, manifest, result
        self.current = 0
        self.rows: list[dict[str, Any]] = []

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            while row["file"] != self.current:
                if row["file"] < self.current:
                    raise BionerError(f"a document of {self.pending[row['file']][0]} came back after its shard "
                                      "was written (Ray returned rows out of order); the output was not changed")
                self._close()
            self.rows.append(row)

    def finish(self) -> None:
        while self.current < len(self.pending):
            self._close()

    def _close(self) -> None:
        path, sha = self.pending[self.current]
        rows, self.rows = self.rows, []
        expected = rows[0]["n"] if rows else 0
        seqs = [r["seq"] for r in rows]
        if seqs != list(range(expected)):
            missing = sorted(set(range(expected)) - set(seqs))
            extra = len(seqs) - len(set(seqs))
            raise BionerError(f"{path}: {expected} documents read but {len(seqs)} tagged ({len(missing)} missing, "
                              f"{extra} duplicated); its shard was not written. Rerun to tag it again.")
        name = shard_name(path, self.fmt)
        docs = [Document(r["id"], r["text"], [TextSpan(**s) for s in json.loads(r["spans"])]) for r in rows]
        _write_shard(self.output / name, docs, self.fmt)
        n_spans = sum(len(d.spans) for d in docs)
        n_sents = sum(r["sentences"] for r in rows)
        self.manifest["inputs"][str(path)] = {"shard": name, "sha256": sha, "documents": len(docs),
                                              "sentences": n_sents, "spans": n_spans}
        write_text_atomic(self.output / MANIFEST, json.dumps(self.manifest, indent=1))
        r = self.result
        r.tagged_inputs += 1
        r.documents += len(docs)
        r.sentences += n_sents
        r.spans += n_spans
        self.current += 1


def _write_shard(path: Path, docs: list[Document], fmt: str) -> None:
    if fmt == "jsonl":
        with atomic_write(path) as out:
            for doc in docs:
                out.write(json.dumps(document_record(doc), ensure_ascii=False) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    span_type = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()),
                           ("text", pa.string()), ("score", pa.float64())])
    table = pa.table({
        "id": pa.array([d.id for d in docs], pa.string()),
        "text": pa.array([d.text for d in docs], pa.string()),
        "spans": pa.array([[{"start": s.start, "end": s.end, "label": s.label, "text": s.text, "score": s.score}
                            for s in d.spans] for d in docs], pa.list_(span_type)),
    })
    with atomic_write(path, "wb") as out:
        pq.write_table(table, out)


def read_shards(output: Path) -> Iterator[Document]:
    """Every tagged document of an output folder, in manifest order (for checks and downstream use)."""
    manifest = json.loads((output / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["inputs"].values():
        shard = output / entry["shard"]
        if manifest["format"] == "jsonl":
            yield from read_documents(shard, "jsonl")
        else:
            import pyarrow.parquet as pq

            for rec in pq.read_table(shard).to_pylist():
                yield Document(rec["id"], rec["text"], [TextSpan(**s) for s in rec["spans"]])

