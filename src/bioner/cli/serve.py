"""``bioner serve``: a REST API and a web page for trained taggers (FastAPI + uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import (
    AllowPickle,
    Backend,
    Precision,
    Threads,
    TrustRemoteCode,
    at_least,
)
from bioner.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_models(items: list[str]) -> list[tuple[str, Path]]:
    """``RUN`` or ``NAME=RUN``; a bare RUN is named after its folder."""
    out: list[tuple[str, Path]] = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).name, item
        if not name or not path:
            raise InputError(f"--model {item!r}: expected RUN or NAME=RUN")
        if name in [n for n, _ in out]:
            raise InputError(f"--model {item!r}: the name '{name}' is used twice; give NAME=RUN")
        out.append((name, Path(path)))
    return out


def serve_command(
    model: Annotated[list[str], typer.Option(help="Run folder, or NAME=RUN; repeat to serve several.")],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --api-key-env or --insecure.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(callback=at_least(0), help="Port (0: any free port).")] = 8000,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the API key (Authorization: Bearer KEY).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback address without an API key.")] = False,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allowed CORS origin (repeatable); CORS is off without it.")] = None,
    max_batch_tokens: Annotated[int, typer.Option(callback=at_least(1), help="Tokens gathered into one model call.")] = 4096,
    max_wait_ms: Annotated[float, typer.Option(help="How long a request waits for others to share its model call.")] = 5.0,
    max_queue: Annotated[int, typer.Option(callback=at_least(1), help="Waiting requests before 503.")] = 1024,
    max_body_bytes: Annotated[int, typer.Option(callback=at_least(1), help="Request body limit (413 above).")] = 1_000_000,
    max_texts: Annotated[int, typer.Option(callback=at_least(1), help="Texts or documents per request (413 above).")] = 256,
    max_chars: Annotated[int, typer.Option(callback=at_least(1), help="Characters per text (413 above; long texts are windowed, never cut).")] = 200_000,
    timeout_s: Annotated[float, typer.Option(help="Per-request time limit (504 after it).")] = 60.0,
    backend: Backend = "auto",
    precision: Precision = None,
    threads: Threads = None,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Serve taggers: POST /v1/tag, POST /v1/documents, GET /v1/models, /metrics, the page at /."""
    from bioner.models import load_tagger
    from bioner.models.runtime import settle_heap

    try:
        from bioner.serve.app import ServedModel, ServeSettings, create_app
    except ImportError as exc:
        raise InputError(f"bioner serve needs the serving extra ({exc.name} is missing): "
                         "pip install -e '.[serve]'") from None

    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    if host not in LOOPBACK and api_key is None and not insecure:
        raise InputError(f"--host {host} exposes the server beyond this machine: give --api-key-env VAR "
                         "(clients send 'Authorization: Bearer KEY'), or --insecure if you mean it")
    for name, value in (("--max-wait-ms", max_wait_ms), ("--timeout-s", timeout_s)):
        if not value > 0 or value == float("inf"):
            raise InputError(f"{name} {value}: must be a positive number")
    served = []
    for name, run in parse_models(model):
        tagger = load_tagger(run, threads, backend, precision=precision, trust_remote_code=trust_remote_code,
                             allow_pickle=allow_pickle)
        served.append(ServedModel(name, tagger, run))
    settle_heap()  # models load once, then serve: keep full garbage collections off the loaded heap
    settings = ServeSettings(max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms, max_queue=max_queue,
                             max_body_bytes=max_body_bytes, max_texts=max_texts, max_chars=max_chars,
                             timeout_s=timeout_s, api_key=api_key, cors_origins=list(cors_origin or []))
    app = create_app(served, settings)
    import uvicorn

    typer.echo(f"serving {', '.join(n for n, _ in parse_models(model))} on http://{host}:{port}/ "
               f"(API docs at /docs){'' if api_key else ' without an API key'}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
