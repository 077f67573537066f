"""Lab 09's service, as a real process on a free port of 127.0.0.1 (no mocked client): good
and bad requests, /metrics moving, micro-batching routing each request its own answer, the
load test's bounds, a clear start-up error without a model, and no process left behind."""
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import psutil
import pytest

from labkit.core import classifier as C
from labkit.core import measure, models, procs, text
from labkit.labs import evaluate
from labkit.labs.evaluate import loadtest, serve

POS = ["a good film", "a great cast", "good and great", "a fine good plot", "great fun"]
NEG = ["a bad film", "an awful cast", "bad and awful", "a dull bad plot", "awful mess"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, module_cache):
    """A tiny trained classifier saved as a lab saves one."""
    tok = text.train_wordpiece((POS + NEG) * 10, vocab_size=60, min_frequency=1)
    model = C.small_classifier(models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32), pretrained=False)
    C.fine_tune(model, tok, POS + NEG, [1] * 5 + [0] * 5, lr=3e-3, steps=30, batch_size=10, max_len=32)
    folder = C.save_classifier(model.eval(), tok, tmp_path_factory.mktemp("m") / "clf",
                               label_names=["negative", "positive"])
    return folder, tok, model


def gone(pid, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(saved):
    s = serve.Server(str(saved[0]), threads=1).start()
    yield s
    s.stop()
    assert gone(s.proc.pid)


def test_good_requests_get_labels_and_probabilities(server, saved):
    _, tok, model = saved
    assert server.url.startswith("http://127.0.0.1:")
    h = httpx.get(server.url + "/health").json()
    assert h["status"] == "ok" and h["labels"] == ["negative", "positive"] and h["threads"] == 1
    one = httpx.post(server.url + "/predict", json={"text": "a good film"}).json()
    many = httpx.post(server.url + "/predict", json={"text": POS + NEG}).json()
    assert len(one["labels"]) == 1 and len(many["labels"]) == 10
    local = C.predict_proba(model, tok, POS + NEG, max_len=64)
    assert np.allclose(many["probabilities"], local, atol=1e-3)
    assert many["labels"] == [["negative", "positive"][i] for i in local.argmax(1)]


@pytest.mark.parametrize("kwargs, status, says", [
    (dict(content=b'{"text": "x', headers={"content-type": "application/json"}), 422, "JSON"),
    (dict(json={"text": 5}), 422, "valid string"),
    (dict(json={"text": ["fine", 3]}), 422, "valid string"),
    (dict(json={"review": "fine"}), 422, "Field required"),
    (dict(json={"text": "  "}), 422, "empty"),
    (dict(json={"text": []}), 422, "empty list"),
    (dict(json={"text": "x" * (serve.MAX_CHARS + 1)}), 413, f"limit of {serve.MAX_CHARS:,}"),
    (dict(json={"text": ["ok"] * (serve.MAX_BATCH + 1)}), 413, f"limit of {serve.MAX_BATCH}"),
    (dict(content=b"x" * (serve.MAX_BODY + 1), headers={"content-type": "application/json"}), 413, "bytes"),
])
def test_bad_requests_get_a_4xx_that_names_the_problem_and_the_service_goes_on(server, kwargs, status, says):
    r = httpx.post(server.url + "/predict", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert says in r.text
    assert httpx.post(server.url + "/predict", json={"text": "still fine"}).status_code == 200


def test_metrics_count_requests_texts_and_labels(server):
    before = serve.metrics(server.url)
    httpx.post(server.url + "/predict", json={"text": POS})
    httpx.post(server.url + "/predict", json={"text": ""})
    after = serve.metrics(server.url)
    d = lambda k: after.get(k, 0) - before.get(k, 0)  # noqa: E731
    assert d("labkit_requests_total{path=/predict,status=200}") == 1
    assert d("labkit_requests_total{path=/predict,status=422}") == 1
    assert d("labkit_predict_seconds_count") == 2
    assert d("labkit_input_texts_total") == 5 and d("labkit_input_chars_total") == sum(map(len, POS))
    assert d("labkit_predictions_total{label=negative}") + d("labkit_predictions_total{label=positive}") == 5
    w = evaluate.window(before, after)
    assert w["texts"] == 5 and w["unknown_rate"] == 0 and sum(w["label_share"].values()) == pytest.approx(1)


def test_loadtest_is_bounded_in_requests_and_seconds_and_local_only(server):
    out = loadtest.closed_loop(server.url, POS + NEG, concurrency=4, seconds=30, max_requests=20)
    assert out["requests"] == 20 and out["errors"] == 0 and out["timeouts"] == 0 and out["seconds"] < 30
    assert out["p50_ms"] <= out["p95_ms"] <= out["p99_ms"] and len(out["latencies_ms"]) == 20
    t0, counted = time.perf_counter(), measure._AFRESH["seconds"]
    out = loadtest.closed_loop(server.url, POS, concurrency=2, seconds=0.5, batch=3)
    assert time.perf_counter() - t0 < 5 and out["reviews_per_s"] == pytest.approx(3 * out["requests_per_s"], rel=0.01)
    assert measure._AFRESH["seconds"] - counted >= 0.5  # a load test: measured afresh on every run, reported apart
    with pytest.raises(ValueError, match="127.0.0.1"):
        loadtest.closed_loop("http://example.com", POS)
    with pytest.raises(ValueError, match="concurrency"):
        loadtest.closed_loop(server.url, POS, concurrency=0)


def test_open_loop_sends_on_schedule_and_counts_the_wait_from_it(server, monkeypatch):
    out = loadtest.open_loop(server.url, POS + NEG, rate=40, requests=20, seed=1)
    assert out["sent"] == out["answered"] == 20 and out["errors"] == out["timeouts"] == 0
    assert out["seconds"] >= out["schedule_s"] > 0  # it kept the (seeded) Poisson schedule
    assert out["schedule_s"] == loadtest.open_loop(server.url, POS, rate=40, requests=20, seed=1)["schedule_s"]
    quick = out["p50_ms"]
    real_wait = loadtest._wait_until

    async def late(t):  # a client that falls 0.3 s behind its schedule (a busy event loop, a slow machine)
        await real_wait(t + 0.3)
    monkeypatch.setattr(loadtest, "_wait_until", late)
    behind = loadtest.open_loop(server.url, POS + NEG, rate=40, requests=10, seed=1)
    assert min(behind["latencies_ms"]) >= 300 > quick  # the wait before a late send counts: due, not sent
    with pytest.raises(ValueError, match="600 s"):
        loadtest.open_loop(server.url, POS, rate=0.1, requests=100)
    with pytest.raises(ValueError, match="127.0.0.1"):
        loadtest.open_loop("http://example.com", POS, rate=1, requests=1)


def test_micro_batching_joins_requests_and_routes_each_its_own_answer(saved):
    _, tok, model = saved
    texts = [f"{a} {b}" for a in POS for b in NEG]  # 25 different texts
    local = C.predict_proba(model, tok, texts, max_len=64)
    with serve.Server(str(saved[0]), threads=1, batching=True, max_wait_ms=50) as s:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda t: httpx.post(s.url + "/predict", json={"text": t}, timeout=30).json(),
                                    texts))
        health = httpx.get(s.url + "/health").json()
    assert np.allclose([a["probabilities"][0] for a in answers], local, atol=1e-3)
    assert health["batching"] and health["mean_batch"] > 1
    assert gone(s.proc.pid)


def test_start_without_a_model_fails_with_the_lab_to_run(tmp_cache, tmp_path):
    with pytest.raises(serve.ModelMissing, match="save_classifier"):
        serve.Server(str(tmp_path / "nothing")).start()
    env = dict(os.environ, LABKIT_CACHE=str(tmp_cache), LABKIT_SCALE="smoke")
    r = subprocess.run([sys.executable, "-m", "labkit.course.cli", "serve", "--model", "student"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "run lab 05" in r.stderr, r.stderr


def test_a_service_stops_when_the_process_that_started_it_dies(saved):
    code = ("import sys, time; from labkit.labs.evaluate import serve; "
            "s = serve.Server(sys.argv[1], threads=1).start(); print(s.proc.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code, str(saved[0])], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert psutil.pid_exists(pid)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the service's own watch is left
        parent.wait(10)
        assert gone(pid, within=15)
    finally:
        parent.kill()
        parent.stdout.close()


def torch_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_a_model_from_your_own_csv_is_served_with_its_class_names(tmp_path):
    """The course's example CSV (three classes, Windows-1252, two bad rows): the names its
    Dataset carries are saved with the model and are what the service answers."""
    from pathlib import Path

    from labkit.core import data
    names = ["negative", "neutral", "positive"]
    csv = Path(__file__).resolve().parents[1] / "data" / "examples" / "product_reviews.csv"
    ds = data.from_csv(csv, "review", "sentiment", labels=names, encoding="cp1252", drop=["empty", "unknown"])
    tok = text.train_wordpiece(list(ds["text"]) * 3, vocab_size=300, min_frequency=1)
    model = C.small_classifier(models.small_bert(len(tok), hidden=32, layers=1, heads=2, max_len=32),
                               pretrained=False, num_labels=3)
    C.fine_tune(model, tok, list(ds["text"]), ds["label"], lr=3e-3, steps=20, batch_size=16, max_len=32)
    folder = C.save_classifier(model.eval(), tok, tmp_path / "mine", label_names=ds.features["label"].names,
                               onnx=False)
    assert C.load_classifier(folder)[1].label_names == names
    with serve.Server(str(folder), threads=1) as s:
        assert httpx.get(s.url + "/health").json()["labels"] == names
        out = httpx.post(s.url + "/predict", json={"text": ["Comfortable from the first wear.", "It broke."]}).json()
    local = C.predict_proba(model, tok, ["Comfortable from the first wear.", "It broke."], max_len=64)
    assert out["labels"] == [names[i] for i in local.argmax(1)] and np.allclose(out["probabilities"], local, atol=1e-3)


def test_class_names_that_do_not_fit_the_model_are_refused(saved, tmp_path):
    _, tok, model = saved
    for names, why in ((["bad"], "give 2 distinct"), (["a", "a"], "distinct"), (["a", ""], "non-empty")):
        with pytest.raises(ValueError, match=why):
            C.save_classifier(model, tok, tmp_path / "x", label_names=names)
    assert not (tmp_path / "x").exists()


def test_a_course_model_saved_before_names_were_kept_still_answers_with_them(saved, tmp_path):
    """Lab 03's and 05's models in a learner's cache from before label names were saved:
    served as negative / positive, not '0' / '1' (lab 09's drift check reads those names)."""
    _, tok, model = saved
    names, model.label_names = model.label_names, None
    try:
        for name, want in (("finetuned-small-smoke", ["negative", "positive"]), ("mine", ["0", "1"])):
            folder = C.save_classifier(model, tok, tmp_path / name, onnx=False)
            assert serve.Model(folder).labels == want
    finally:
        model.label_names = names


# ---------------------------------------------------------------- faults (issue 32), each against a real process

def raw_request(url: str, head: bytes, body: bytes = b"") -> socket.socket:
    """A socket to the service that has sent ``head`` and ``body`` and nothing more."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(head + body)
    return s


def test_text_that_is_not_valid_unicode_is_422_not_500(server):
    body = b'{"text": ["a good film", "bad \\ud800 film"]}'  # valid JSON, a lone surrogate: not text
    r = httpx.post(server.url + "/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "text 1 is not valid Unicode" in r.json()["detail"]
    assert httpx.post(server.url + "/predict", json={"text": "a good film"}).status_code == 200


def test_with_batching_a_faulty_request_fails_alone(saved, tmp_path):
    """A fault in one request's texts (here injected into the model for the text "boom") fails
    that request only; the good requests batched with it are answered."""
    (port,) = procs.free_ports(1)
    code = ("import sys; from labkit.labs.evaluate import serve\n"
            "predict = serve.Model.predict\n"
            "def faulty(self, texts):\n"
            "    if 'boom' in texts: raise RuntimeError('an injected fault')\n"
            "    return predict(self, texts)\n"
            "serve.Model.predict = faulty\n"
            f"serve.serve({str(saved[0])!r}, port={port}, threads=1, batching=True, max_wait_ms=200)\n")
    log = tmp_path / "service.log"
    proc = procs.spawn([sys.executable, "-c", code], log)
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_until(lambda: procs.port_open(port), proc, 120, log, "the faulty service")
        texts = [f"{a} {b}" for a in POS for b in NEG][:20] + ["boom"]
        with ThreadPoolExecutor(21) as pool:
            codes = list(pool.map(lambda t: httpx.post(url + "/predict", json={"text": t}, timeout=30).status_code,
                                  texts))
        assert codes == [200] * 20 + [500]
        assert httpx.get(url + "/health").json()["mean_batch"] >= 1
        m = serve.metrics(url)
        assert m["labkit_requests_total{path=/predict,status=500}"] == 1  # a 500 is counted too
        assert m["labkit_requests_total{path=/predict,status=200}"] == 20
        assert "an injected fault" in log.read_text()  # and logged with its cause
    finally:
        procs.stop([proc], grace=10)


def test_metrics_keep_one_series_for_every_unknown_path(server):
    for i in range(30):
        assert httpx.get(f"{server.url}/nothing-here-{i}").status_code == 404
    m = serve.metrics(server.url)
    paths = {k.split("path=")[1].split(",")[0] for k in m if k.startswith("labkit_requests_total")}
    assert paths <= set(serve.ROUTES) | {"other"} and m["labkit_requests_total{path=other,status=404}"] >= 30


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(server):
    def chunks():  # no Content-Length: Transfer-Encoding chunked, 4 MB in all
        for _ in range(64):
            yield b"x" * 65536
    r = httpx.post(server.url + "/predict", content=chunks(), headers={"content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 413 and "1,000,000 bytes" in r.json()["detail"]
    assert serve.metrics(server.url)["labkit_requests_total{path=/predict,status=413}"] >= 1
    assert httpx.post(server.url + "/predict", json={"text": "a good film"}).status_code == 200


def test_a_client_that_stalls_mid_body_is_dropped(server):
    head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n")
    start = time.monotonic()
    s = raw_request(server.url, head, b'{"text": "a go')  # 14 of 100 bytes, then silence
    try:
        answer = s.recv(4096)
    finally:
        s.close()
    took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert serve.BODY_TIMEOUT - 1 < took < serve.BODY_TIMEOUT + 10, took
    assert httpx.post(server.url + "/predict", json={"text": "a good film"}).status_code == 200


def test_sigterm_stops_the_service_within_10_s_even_with_a_stalled_client(saved):
    s = serve.Server(str(saved[0]), threads=1).start()
    stalled = raw_request(s.url, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", b"{")
    try:
        time.sleep(0.5)
        start = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=10)
        assert time.monotonic() - start < 10
    finally:
        stalled.close()
        s.stop()


def test_concurrent_predictions_never_collide_in_the_tokenizer(saved):
    """FastAPI runs `Model.predict` in a thread pool. A fast tokenizer called from two threads
    at once fails ("RuntimeError: Already borrowed", huggingface/transformers#47085): lab 09's
    cold run lost one request in about 3,000 at 32 clients to it. Tokenizing under the model's
    lock keeps every call whole."""
    m = serve.Model(saved[0])
    texts = [f"{a} {b}" for a in POS for b in NEG]

    def hammer(i):
        for j in range(60):
            m.predict([texts[(i + j) % len(texts)]] * (1 + j % 3))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(hammer, range(16)))  # an exception in any thread is raised here
