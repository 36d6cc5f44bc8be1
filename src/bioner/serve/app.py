"""The FastAPI app: ``/v1/tag``, ``/v1/documents``, ``/v1/models``, health, metrics and the page.

Build it with :func:`create_app` from loaded taggers; ``bioner serve`` does that from run
folders.  Model calls go through one :class:`~bioner.serve.batcher.Batcher` per model, so
concurrent requests share model calls and nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from bioner.corpus.documents import Document
from bioner.corpus.formats import (
    DOC_FORMATS,
    document_record,
    read_documents,
    write_documents,
)
from bioner.corpus.labels import LabelSet
from bioner.errors import BionerError
from bioner.models.base import Tagger
from bioner.serve.batcher import Batcher, QueueFull
from bioner.serve.schemas import (
    ErrorResponse,
    ModelCard,
    ModelsResponse,
    Record,
    TagRequest,
    TagResponse,
)

STATIC = Path(__file__).parent / "static"
# what /v1/documents reads and writes, by ?format= or Content-Type
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "pubtator": "text/plain; charset=utf-8",
                 "bioc-xml": "application/xml", "bioc-json": "application/json", "txt": "text/plain; charset=utf-8"}
FORMAT_OF_TYPE = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/xml": "bioc-xml",
                  "text/xml": "bioc-xml", "application/json": "bioc-json", "text/x-pubtator": "pubtator"}
SUFFIX = {"jsonl": ".jsonl", "pubtator": ".pubtator", "bioc-xml": ".xml", "bioc-json": ".json", "txt": ".txt"}


@dataclass(slots=True)
class ServeSettings:
    """Batching knobs and limits (``bioner serve --help`` lists them with their defaults)."""

    max_batch_tokens: int = 4096  # tokens gathered from waiting requests into one model call
    max_wait_ms: float = 5.0  # how long the first waiting request waits for company
    max_queue: int = 1024  # waiting requests before 503
    max_body_bytes: int = 1_000_000  # 413 above this
    max_texts: int = 256  # texts (or documents) per request
    max_chars: int = 200_000  # characters per text; long texts are windowed, never cut
    timeout_s: float = 60.0  # 504 after this
    api_key: str | None = None  # Bearer key for /v1/* and /metrics; None: no key
    cors_origins: list[str] = field(default_factory=list)  # empty: CORS off


@dataclass(slots=True)
class ServedModel:
    name: str
    tagger: Tagger
    run_dir: Path | None = None

    def card(self) -> ModelCard:
        test = None
        report = self.run_dir / "eval_test.json" if self.run_dir is not None else None
        if report is not None and report.is_file():
            raw = json.loads(report.read_text(encoding="utf-8"))
            test = {"overall": {m: {k: raw["overall"][m][k] for k in ("precision", "recall", "f1")}
                                for m in ("strict", "partial")},
                    "by_length": {b: {"strict_f1": v["strict"]["f1"], "gold": v["strict"]["possible"]}
                                  for b, v in raw.get("by_length", {}).items()},
                    "strict_f1_ci": raw.get("ci", {}).get("strict_f1") if raw.get("ci") else None,
                    "n_sentences": raw.get("n_sentences")}
        return ModelCard(name=self.name, kind=self.tagger.kind, labels=list(self.tagger.labels),
                         entity_types=list(LabelSet.from_tags(self.tagger.labels).types),
                         parameters=sum(p.numel() for p in self.tagger.model.parameters()),
                         backend=str(getattr(self.tagger, "backend", "torch")), precision=self.tagger.precision,
                         test=test)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error={"status": status, "message": message}).model_dump(),  # type: ignore[arg-type]
                        status_code=status, headers=headers)


class BodyLimit:
    """413 for bodies over the limit: refused on Content-Length before reading, and cut off while
    streaming when no length was declared, so a large body never sits in memory."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_big = _error(413, f"request body over the limit of {self.max_bytes:,} bytes (server.max_body_bytes)")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(models: list[ServedModel], settings: ServeSettings | None = None) -> FastAPI:
    if not models:
        raise BionerError("serve needs at least one model")
    settings = settings or ServeSettings()
    registry = CollectorRegistry()
    requests_total = Counter("bioner_requests_total", "HTTP requests", ["endpoint", "status"], registry=registry)
    errors_total = Counter("bioner_request_errors_total", "HTTP requests answered with an error",
                           ["endpoint", "status"], registry=registry)
    latency = Histogram("bioner_request_seconds", "Request latency", ["endpoint"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    batch_requests = Histogram("bioner_batch_requests", "Requests per model call", ["model"], registry=registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128))
    batch_documents = Histogram("bioner_batch_documents", "Documents per model call", ["model"], registry=registry,
                                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
    queue_depth = Gauge("bioner_queue_depth", "Requests waiting for a model call", ["model"], registry=registry)
    by_name = {m.name: m for m in models}
    batchers: dict[str, Batcher] = {}
    for m in models:
        def observe(requests: int, docs: int, seconds: float, name: str = m.name) -> None:
            batch_requests.labels(name).observe(requests)
            batch_documents.labels(name).observe(docs)

        batchers[m.name] = Batcher(m.tagger, settings.max_batch_tokens, settings.max_wait_ms, settings.max_queue,
                                   on_batch=observe)
        queue_depth.labels(m.name).set_function(lambda b=batchers[m.name]: b.depth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for b in batchers.values():
            b.start()
        app.state.ready = True
        yield
        app.state.ready = False
        for b in batchers.values():
            await b.stop()

    app = FastAPI(title="bioner", version="0.1.0", lifespan=lifespan,
                  description="Biomedical NER: tag texts and documents with a trained bioner tagger.")
    app.state.ready = False
    app.state.batchers = batchers
    app.state.settings = settings
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "other")
        requests_total.labels(endpoint, str(response.status_code)).inc()
        if response.status_code >= 400:
            errors_total.labels(endpoint, str(response.status_code)).inc()
        latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
            problems.append(f"{where}: {err['msg']}")
        return _error(422, "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'")

    def pick(name: str | None) -> ServedModel:
        if name is None:
            return models[0]
        if name not in by_name:
            raise ApiError(404, f"unknown model '{name}' (served: {', '.join(by_name)})")
        return by_name[name]

    def check_texts(texts: list[str], what: str) -> None:
        if not texts:
            raise ApiError(422, f"no {what} to tag")
        if len(texts) > settings.max_texts:
            raise ApiError(413, f"{len(texts)} {what} in one request; the limit is {settings.max_texts} "
                                "(server.max_texts): split the request")
        for i, t in enumerate(texts):
            if len(t) > settings.max_chars:
                raise ApiError(413, f"{what} {i} has {len(t):,} characters; the limit is {settings.max_chars:,} "
                                    "(server.max_chars). Long texts are windowed, never cut: raise the limit "
                                    "or split the text")

    async def run(model: ServedModel, docs: list[Document]) -> list[Document]:
        try:
            return await asyncio.wait_for(batchers[model.name].submit(docs), settings.timeout_s)
        except QueueFull as exc:
            raise ApiError(503, f"the server is busy: {exc}; retry shortly") from None
        except TimeoutError:
            raise ApiError(504, f"tagging took longer than {settings.timeout_s:g} s (server.timeout_s)") from None

    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (401, 404, 413, 422, 503, 504)}

    @app.post("/v1/tag", response_model=TagResponse, responses=error_responses,
              dependencies=[Depends(authorize)], summary="Tag one text or a list of texts")
    async def tag(body: TagRequest) -> TagResponse:
        model = pick(body.model)
        texts = body.all_texts()
        check_texts(texts, "texts" if body.texts is not None else "text")
        docs = await run(model, [Document(str(i), t) for i, t in enumerate(texts)])
        if body.min_score is not None:
            if any(sp.score is None for d in docs for sp in d.spans):
                raise ApiError(422, f"min_score: model '{model.name}' ({model.tagger.kind}) gives no span scores")
            docs = [Document(d.id, d.text, [sp for sp in d.spans if sp.score is not None and sp.score >= body.min_score])
                    for d in docs]
        return TagResponse(model=model.name, results=[Record.model_validate(document_record(d)) for d in docs])

    @app.post("/v1/documents", responses={200: {"content": {t: {} for t in CONTENT_TYPES.values()}},
                                          **error_responses},
              dependencies=[Depends(authorize)], summary="Tag documents (BioC XML/JSON, PubTator, JSONL)")
    async def documents(request: Request,
                        format: str | None = Query(None, description=f"Input format: {', '.join(DOC_FORMATS)}; "
                                                   "default: from the Content-Type"),
                        output: str | None = Query(None, description="Answer in this format (default: the input's)"),
                        model: str | None = Query(None, description="Served model name")) -> Response:
        served = pick(model)
        fmt = format or FORMAT_OF_TYPE.get(request.headers.get("content-type", "").split(";")[0].strip().lower())
        if fmt is None:
            raise ApiError(415, "say the input format: ?format=jsonl|pubtator|bioc-xml|bioc-json|txt, or a "
                                "Content-Type of application/xml, application/json, application/x-ndjson or "
                                "text/x-pubtator")
        out_fmt = output or fmt
        for name, value in (("format", fmt), ("output", out_fmt)):
            if value not in SUFFIX:
                raise ApiError(422, f"{name}: unknown format '{value}' (one of {', '.join(SUFFIX)})")
        if out_fmt == "txt":
            raise ApiError(422, "output: txt holds no annotations; use jsonl, pubtator, bioc-xml or bioc-json")
        body = await request.body()
        with tempfile.TemporaryDirectory(prefix="bioner-serve-") as tmp:
            source = Path(tmp) / f"request{SUFFIX[fmt]}"
            source.write_bytes(body)
            try:
                docs = [Document(d.id, d.text, [], dict(d.meta)) for d in read_documents(source, fmt)]
            except BionerError as exc:
                raise ApiError(422, str(exc).replace(str(source), "body")) from None
            check_texts([d.text for d in docs], "documents")
            tagged = await run(served, docs)
            target = Path(tmp) / f"answer{SUFFIX[out_fmt]}"
            write_documents(tagged, target, out_fmt)
            return Response(target.read_bytes(), media_type=CONTENT_TYPES[out_fmt])

    @app.get("/v1/models", response_model=ModelsResponse, dependencies=[Depends(authorize)])
    async def list_models() -> ModelsResponse:
        return ModelsResponse(models=[m.card() for m in models])

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Models are loaded and their batchers run")
    async def readyz() -> JSONResponse:
        ready = bool(app.state.ready)
        return JSONResponse({"ready": ready, "models": list(by_name)}, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=[Depends(authorize)], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
