"""`bioner serve`: the API through FastAPI's TestClient, the CLI's rules, and the page in a real
headless Chromium against a live server on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from bioner.corpus.conll import load_conll  # noqa: E402
from bioner.evaluate import evaluate  # noqa: E402
from bioner.files import write_text_atomic  # noqa: E402
from bioner.models import load_tagger  # noqa: E402
from bioner.serve.app import ServedModel, ServeSettings, create_app  # noqa: E402
from tests.helpers import bioner, tiny_run_folder  # noqa: E402

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
ABSTRACT = ("Lithium-induced nephrogenic diabetes insipidus appeared in 3 of 12 patients (p < 0.05). "
            "Naive rats given 2.5 mg/kg cisplatin developed acute renal failure and hypothyroidism.")
SAMPLE = Path(__file__).parents[2] / "src" / "bioner" / "data" / "sample"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tiny_run_folder(tmp_path_factory.mktemp("run"), LABELS, seed=3)
    gold = load_conll(SAMPLE / "test.txt")
    report = evaluate(gold, load_tagger(folder).predict_sentences(gold))
    write_text_atomic(folder / "eval_test.json", json.dumps(report.to_dict()))
    return folder


def client_for(run: Path, **settings: object) -> TestClient:
    app = create_app([ServedModel("tiny", load_tagger(run, backend="torch"), run)], ServeSettings(**settings))  # type: ignore[arg-type]
    return TestClient(app)


def test_tag_one_text_has_the_predict_shape_and_exact_offsets(run: Path) -> None:
    with client_for(run) as client:
        body = client.post("/v1/tag", json={"text": ABSTRACT}).json()
    assert body["model"] == "tiny" and len(body["results"]) == 1
    record = body["results"][0]
    assert set(record) == {"id", "text", "spans"} and record["text"] == ABSTRACT
    assert record["spans"], "the tiny model tags something"
    for s in record["spans"]:
        assert ABSTRACT[s["start"]:s["end"]] == s["text"] and s["label"] in ("Chemical", "Disease")
    assert record["spans"] == [s.to_dict() for s in load_tagger(run).tag_text(ABSTRACT)]


def test_texts_come_back_in_input_order(run: Path) -> None:
    texts = [ABSTRACT, "", "Aspirin.", ABSTRACT[:40]]
    with client_for(run) as client:
        results = client.post("/v1/tag", json={"texts": texts}).json()["results"]
    assert [r["text"] for r in results] == texts and [r["id"] for r in results] == ["0", "1", "2", "3"]
    assert results[1]["spans"] == []


def test_documents_in_pubtator_bioc_and_jsonl(run: Path) -> None:
    cut = ABSTRACT.index(". ") + 1  # title = the first sentence; the text is title + " " + abstract
    pubtator = f"42|t|{ABSTRACT[:cut]}\n42|a|{ABSTRACT[cut + 1:]}\n\n"
    expected = [s.to_dict() for s in load_tagger(run).tag_text(ABSTRACT)]
    with client_for(run) as client:
        answer = client.post("/v1/documents?format=pubtator", content=pubtator)
        assert answer.status_code == 200, answer.text
        lines = answer.text.splitlines()
        assert lines[0] == f"42|t|{ABSTRACT[:cut]}" and lines[1] == f"42|a|{ABSTRACT[cut + 1:]}"
        assert [line.split("\t")[1:5] for line in lines[2:] if line] == \
            [[str(s["start"]), str(s["end"]), s["text"], s["label"]] for s in expected]
        as_jsonl = client.post("/v1/documents?format=pubtator&output=jsonl", content=pubtator)
        assert json.loads(as_jsonl.text)["spans"] == expected
        bioc = client.post("/v1/documents?output=bioc-xml", content=pubtator,
                           headers={"Content-Type": "text/x-pubtator"})
        assert bioc.headers["content-type"].startswith("application/xml") and "<collection>" in bioc.text
        back = client.post("/v1/documents?output=jsonl", content=bioc.text,
                           headers={"Content-Type": "application/xml"})
        assert json.loads(back.text)["spans"] == expected  # BioC in, same spans out
        jsonl = client.post("/v1/documents", content=json.dumps({"id": "a", "text": ABSTRACT}) + "\n",
                            headers={"Content-Type": "application/x-ndjson"})
        assert json.loads(jsonl.text)["spans"] == expected


def test_models_card_and_health(run: Path) -> None:
    with client_for(run) as client:
        card = client.get("/v1/models").json()["models"][0]
        assert card["name"] == "tiny" and card["kind"] == "encoder" and card["labels"] == LABELS
        assert card["entity_types"] == ["Chemical", "Disease"] and card["parameters"] > 0
        saved = json.loads((run / "eval_test.json").read_text())
        assert card["test"]["overall"]["strict"]["f1"] == saved["overall"]["strict"]["f1"]
        assert set(card["test"]["by_length"]) == {"1", "2", "3+"}
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["ready"] is True
        page = client.get("/")
        assert page.status_code == 200 and "<script src=\"/static/app.js\">" in page.text
        assert client.get("/static/app.js").status_code == 200
        assert "/v1/tag" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(("request_kwargs", "status", "says"), [
    ({"content": "{not json", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ({"json": {"texts": ["ok", 7]}}, 422, "texts.1"),
    ({"json": {"text": "a", "texts": ["b"]}}, 422, "exactly one of 'text' or 'texts'"),
    ({"json": {"txet": "typo"}}, 422, "txet"),
    ({"json": {"text": "a", "model": "nope"}}, 404, "unknown model 'nope'"),
    ({"json": {"texts": ["a"] * 5}}, 413, "limit is 4"),
    ({"json": {"text": "x" * 3001}}, 413, "3,001 characters"),
    ({"content": b"{" + b" " * 20_000 + b"}", "headers": {"Content-Type": "application/json"}}, 413, "10,000 bytes"),
])
def test_errors_are_json_and_name_the_problem(run: Path, request_kwargs: dict, status: int, says: str) -> None:
    with client_for(run, max_texts=4, max_chars=3000, max_body_bytes=10_000) as client:
        answer = client.post("/v1/tag", **request_kwargs)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]


def test_documents_errors(run: Path) -> None:
    with client_for(run) as client:
        assert client.post("/v1/documents", content="x").status_code == 415
        bad = client.post("/v1/documents?format=pubtator", content="1\t0\t7\tAspirin\tChemical\n")
        assert bad.status_code == 422 and "body:1" in bad.json()["error"]["message"]
        assert client.post("/v1/documents?format=docx", content="x").status_code == 422


def test_timeout_is_504(run: Path) -> None:
    with client_for(run, timeout_s=0.001, max_wait_ms=200) as client:
        answer = client.post("/v1/tag", json={"text": ABSTRACT})
    assert answer.status_code == 504 and "server.timeout_s" in answer.json()["error"]["message"]


def test_api_key_rule(run: Path) -> None:
    with client_for(run, api_key="s3cret") as client:
        assert client.post("/v1/tag", json={"text": "a"}).status_code == 401
        assert client.post("/v1/tag", json={"text": "a"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics").status_code == 401
        ok = client.post("/v1/tag", json={"text": "a"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no key


def test_concurrent_requests_share_model_calls_and_get_the_same_spans(run: Path) -> None:
    texts = [f"Patient {i} received cisplatin and developed renal failure. " + ABSTRACT[: 20 + 7 * i] for i in range(24)]
    alone = {t: [s.to_dict() for s in load_tagger(run).tag_text(t)] for t in texts}
    with client_for(run, max_wait_ms=100) as client:
        batcher = client.app.state.batchers["tiny"]  # type: ignore[attr-defined]
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda t: client.post("/v1/tag", json={"text": t}).json(), texts))
        assert batcher.stats.model_calls < len(texts)
        assert max(batcher.stats.batch_sizes) > 1
        for text, answer in zip(texts, answers):  # same spans; scores equal up to float rounding of batching
            got = answer["results"][0]["spans"]
            assert [{k: v for k, v in x.items() if k != "score"} for x in got] == \
                [{k: v for k, v in x.items() if k != "score"} for x in alone[text]]
            assert [x["score"] for x in got] == pytest.approx([x["score"] for x in alone[text]], abs=1e-5)
        metrics = client.get("/metrics").text
    assert 'bioner_requests_total{endpoint="/v1/tag",status="200"} 24.0' in metrics
    assert "bioner_batch_requests_count" in metrics and "bioner_queue_depth" in metrics


def test_cli_refuses_a_public_address_without_a_key(run: Path) -> None:
    proc = bioner("serve", "--model", str(run), "--host", "0.0.0.0", check=False)
    assert proc.returncode == 1 and "--api-key-env" in proc.stderr and "--insecure" in proc.stderr
    proc = bioner("serve", "--model", str(run), "--api-key-env", "BIONER_TEST_NO_SUCH_VAR", check=False)
    assert proc.returncode == 1 and "BIONER_TEST_NO_SUCH_VAR" in proc.stderr


# ------------------------------------------------------------------ the page in a real browser


def _chromium() -> str | None:
    return os.environ.get("BIONER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def live_server(run: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bioner", "serve", "--model", f"tiny={run}", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())  # type: ignore[union-attr]
        time.sleep(0.3)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_the_page_in_headless_chromium(live_server: str, tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium: apt-get install chromium (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright").sync_playwright
    import httpx

    expected = httpx.post(f"{live_server}/v1/tag", json={"text": ABSTRACT}).json()["results"][0]["spans"]
    hostile = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> Aspirin caused asthma."
    artifacts = Path(os.environ.get("BIONER_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_api() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(live_server + "/")
        page.wait_for_selector("#card h2")
        assert page.inner_text("#card h2") == "tiny"
        page.fill("#text", ABSTRACT)
        page.click("#tag")
        page.wait_for_function("document.querySelector('#status').textContent.includes('entities')")
        marks = page.eval_on_selector_all(
            "mark.ent", "ms => ms.map(m => [Number(m.dataset.start), Number(m.dataset.end), m.dataset.label, "
                        "m.firstChild.textContent])")
        assert marks == [[s["start"], s["end"], s["label"], s["text"]] for s in expected]
        shown = "(() => { const c = document.querySelector('#rendered .doc').cloneNode(true); " \
                "c.querySelectorAll('.lab').forEach(l => l.remove()); return c.textContent; })()"
        assert page.evaluate(shown) == ABSTRACT  # the text itself, every character, in order
        assert page.locator("#spans tbody tr").count() == len(expected)
        assert set(page.eval_on_selector_all(".legend span", "ls => ls.map(l => l.textContent)")) == \
            {s["label"] for s in expected}
        page.screenshot(path=str(artifacts / "serve_page.png"), full_page=True)
        page.fill("#text", hostile)
        page.click("#tag")
        page.wait_for_function("document.querySelector('#status').textContent.includes('entities')")
        assert page.evaluate(shown).startswith(hostile[:60])  # markup shown as text
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#rendered script, #rendered img").count() == 0
        page.screenshot(path=str(artifacts / "serve_page_hostile.png"), full_page=True)
        browser.close()
