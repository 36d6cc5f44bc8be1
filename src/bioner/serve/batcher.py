"""Request batching: concurrent requests meet in a queue and go to the model together.

One worker per model takes the first waiting job, gathers more until a token budget is full or
``max_wait_ms`` has passed, and runs ``Tagger.tag_documents`` on all of them in a single
background thread (never on the event loop); each request then gets its own documents back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bioner.corpus.documents import Document
from bioner.corpus.text import count_tokens
from bioner.models.base import Tagger

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests wait than the queue holds (answered 503: try again later)."""


@dataclass(slots=True)
class _Job:
    docs: list[Document]
    tokens: int
    future: asyncio.Future[list[Document]]


@dataclass(slots=True)
class BatchStats:
    model_calls: int = 0
    documents: int = 0
    batch_sizes: list[int] = field(default_factory=list)  # requests per model call (last 1,000)


class Batcher:
    def __init__(self, tagger: Tagger, max_batch_tokens: int = 4096, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, on_batch: Callable[[int, int, float], None] | None = None) -> None:
        self.tagger = tagger
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch  # (requests, documents, seconds) for metrics
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        # one thread: the model runs one batch at a time, off the event loop
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bioner-model")

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bioner-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, docs: list[Document]) -> list[Document]:
        """Tag ``docs`` together with whatever else is waiting; results in input order."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting (server.max_queue={self.max_queue})")
        future: asyncio.Future[list[Document]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(docs, sum(count_tokens(d.text) for d in docs), future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        carry: _Job | None = None  # a job that did not fit the last batch goes first in the next
        while True:
            job = carry if carry is not None else await self._queue.get()
            carry = None
            jobs, tokens = [job], job.tokens
            deadline = loop.time() + self.max_wait_s
            while tokens < self.max_batch_tokens:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    nxt = self._queue.get_nowait()
                if tokens + nxt.tokens > self.max_batch_tokens:
                    carry = nxt
                    break
                jobs.append(nxt)
                tokens += nxt.tokens
            jobs = [j for j in jobs if not j.future.cancelled()]  # a client gone or timed out
            if not jobs:
                continue
            docs = [d for j in jobs for d in j.docs]
            started = time.perf_counter()
            try:
                tagged = await loop.run_in_executor(self._executor, lambda: list(self.tagger.tag_documents(docs)))
            except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
                log.exception("tagging failed")
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - started
            self.stats.model_calls += 1
            self.stats.documents += len(docs)
            self.stats.batch_sizes = (self.stats.batch_sizes + [len(jobs)])[-1000:]
            if self.on_batch is not None:
                self.on_batch(len(jobs), len(docs), seconds)
            k = 0
            for j in jobs:
                part, k = tagged[k:k + len(j.docs)], k + len(j.docs)
                if not j.future.done():
                    j.future.set_result(part)
