"""Lab 09: the model behind HTTP, the load test, and drift seen through the metrics.

- `build_app`: a FastAPI app around one saved classifier: ``POST /predict`` (one text or a
  list), ``GET /health``, ``GET /metrics`` (Prometheus text). Malformed JSON or a wrong type
  is 422 (pydantic), an empty text 422, a text or batch over the limit 413, each with a
  message that names the limit. Inference runs off the event loop: a plain ``def`` endpoint
  (FastAPI's thread pool) behind one lock, or with ``batching`` one worker thread that joins
  concurrent requests into one forward pass (micro-batching).
- `Server`: ``labkit serve`` as a child process on a free port of 127.0.0.1, always stopped:
  on `stop`, after a ``with`` block, when this Python exits, or by itself when it is orphaned.
- `metrics`: ``/metrics`` as numbers (`evaluate.window` and `evaluate.drift` read them).

Leaves out: the evaluation and the model card (`labkit.labs.evaluate`), the load tests
(`labkit.labs.evaluate.loadtest`), TLS, authentication.
"""
import asyncio
import atexit
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from labkit.core import measure, procs
from labkit.labs.evaluate.loadtest import local_url

MAX_CHARS, MAX_BATCH, MAX_BODY = 2000, 64, 1_000_000  # per text, texts per request, bytes per request
BODY_TIMEOUT = 10.0  # seconds a client may leave a request's body unfinished before it is dropped
ROUTES = ("/predict", "/health", "/metrics", "/docs", "/openapi.json")  # /metrics' path labels: these, else "other"
MODELS = {"minilm": "lab 03 (notebooks/03_fine_tuning.ipynb)", "small": "lab 03 (notebooks/03_fine_tuning.ipynb)",
          "student": "lab 05 (notebooks/05_distillation.ipynb)"}


class ModelMissing(FileNotFoundError):
    """No saved model where the service looks for one."""


def model_folder(model: str) -> Path:
    """The folder of ``model``: a kind a lab saves ('minilm', 'small', 'student', at the
    current scale) or a path to a folder `classifier.save_classifier` wrote."""
    from labkit.core import classifier
    folder = classifier.best_dir(model) if model in MODELS else Path(model)
    if not (folder / "head.safetensors").exists():
        how = (f"run {MODELS[model]} at this scale first" if model in MODELS else
               f"give --model one of {', '.join(MODELS)} or a folder written by classifier.save_classifier")
        raise ModelMissing(f"no saved model {model!r} at {folder}: {how}")
    return folder


class Model:
    """A saved classifier ready to answer: ``predict(texts)`` -> (probabilities, token
    counts, unknown-token counts), under one lock so concurrent calls never share torch's
    threads. Reads reviews at the model's own ``max_len`` and divides its logits by its own
    temperature (both from its ``classifier.json``; lab 09 fits the temperature)."""

    def __init__(self, folder: Path):
        import torch

        from labkit.core import classifier
        self.tokenizer, self.model, self.info = classifier.load_classifier(folder, strict=True)
        k = self.model.head.out_features
        self.labels = self.model.label_names or [str(i) for i in range(k)]
        self.temperature, self.max_len = self.model.temperature, self.model.max_len
        self.lock, self.torch = threading.Lock(), torch

    def predict(self, texts: list[str]):
        # the tokenizer under the lock too: transformers sets a fast tokenizer's truncation and padding on
        # every call, and a call while another thread encodes fails with "RuntimeError: Already borrowed"
        # (huggingface/transformers#47085): one failed request in about 3,000 at 32 clients, lab 09 cold
        with self.lock, self.torch.inference_mode():
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_len, padding=True, return_tensors="pt")
            logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        probs = (logits / self.temperature).softmax(-1).numpy()
        tokens = enc["attention_mask"].sum(-1).numpy() - 2  # without [CLS] and [SEP]
        unknown = (enc["input_ids"] == self.tokenizer.unk_token_id).sum(-1).numpy()
        return probs, tokens, unknown


class Batcher:
    """One thread that joins the (texts, callback) jobs arriving within ``max_wait_ms`` (up to
    ``max_batch`` texts) into one forward pass, and hands each request its rows."""

    def __init__(self, model: Model, max_batch: int = MAX_BATCH, max_wait_ms: float = 5.0):
        self.model, self.max_batch, self.wait = model, max_batch, max_wait_ms / 1000
        self.queue, self.batches = queue.Queue(), []
        threading.Thread(target=self.loop, daemon=True, name="labkit-batcher").start()

    def loop(self):
        while True:
            jobs = [self.queue.get()]
            n, deadline = len(jobs[0][0]), time.perf_counter() + self.wait
            while n < self.max_batch and (left := deadline - time.perf_counter()) > 0:
                try:
                    jobs.append(self.queue.get(timeout=left))
                    n += len(jobs[-1][0])
                except queue.Empty:
                    break
            try:
                out = self.model.predict([t for texts, _ in jobs for t in texts])
                self.batches.append(n)
                start = 0
                for texts, done in jobs:
                    done(tuple(a[start:start + len(texts)] for a in out), None)
                    start += len(texts)
            except Exception:  # one request's texts broke the joined batch: each job alone, so only it fails
                for texts, done in jobs:
                    try:
                        out = self.model.predict(texts)
                    except Exception as e:
                        done(None, e)
                    else:
                        self.batches.append(len(texts))
                        done(out, None)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413 as it arrives,
    whether its size was declared (Content-Length) or not (chunked), and a body left
    unfinished for ``timeout`` seconds is answered 408 and dropped."""

    def __init__(self, app, limit: int, timeout: float):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from fastapi import HTTPException
        received, finished = 0, False

        async def limited():
            nonlocal received, finished
            if finished:  # the body is in: what comes next (a disconnect) may take its time
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"the request body stalled: nothing arrived for {self.timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if received > self.limit:
                    raise HTTPException(413, f"request body over the limit of {self.limit:,} bytes")
            return message
        await self.app(scope, limited, send)


def build_app(model: str = "minilm", threads: int | None = None, batching: bool = False,
              max_wait_ms: float = 5.0, max_chars: int = MAX_CHARS, max_batch: int = MAX_BATCH):
    """The FastAPI app serving ``model`` (see `model_folder`), loaded once, with torch set to
    ``threads`` (default: what it uses now). Raises `ModelMissing` before serving anything."""
    import torch
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Histogram,
        disable_created_metrics,
        generate_latest,
    )
    from pydantic import BaseModel, ConfigDict, StrictStr

    folder = model_folder(model)
    torch.set_num_threads(threads or torch.get_num_threads())
    m = Model(folder)
    batcher = Batcher(m, max_batch, max_wait_ms) if batching else None
    disable_created_metrics()  # no *_created samples: counters and the histogram only
    reg = CollectorRegistry()
    requests = Counter("labkit_requests", "HTTP requests by path and status", ["path", "status"], registry=reg)
    latency = Histogram("labkit_predict_seconds", "time to answer POST /predict", registry=reg,
                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
    by_label = Counter("labkit_predictions", "texts predicted, by label", ["label"], registry=reg)
    n_texts = Counter("labkit_input_texts", "texts received", registry=reg)
    n_chars = Counter("labkit_input_chars", "characters received", registry=reg)
    n_tokens = Counter("labkit_input_tokens", "word pieces seen by the model", registry=reg)
    n_unk = Counter("labkit_input_unknown_tokens", "word pieces that were [UNK]", registry=reg)
    for label in m.labels:
        by_label.labels(label)

    class PredictIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: StrictStr | list[StrictStr]

    app = FastAPI(title="labkit sentiment service", version="0.1.0")
    # added first, so it sits inside `count` (the last added is outermost): its 413 and 408 answers are
    # HTTP answers the route gives, and counted (outermost, anyio's task group would wrap them: a 400)
    app.add_middleware(BodyLimit, limit=MAX_BODY, timeout=BODY_TIMEOUT)

    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > MAX_BODY:
            response = JSONResponse({"detail": f"request body of {int(size):,} bytes is over the limit of "
                                               f"{MAX_BODY:,} bytes"}, status_code=413)
        else:
            try:
                response = await call_next(request)
            except Exception as e:  # a fault of ours: answered, counted, logged; the service goes on
                print(f"labkit serve: 500 on {request.url.path}: {type(e).__name__}: {e}", file=sys.stderr)
                response = JSONResponse({"detail": "internal error: the service's log says what failed"},
                                        status_code=500)
        path = request.url.path if request.url.path in ROUTES else "other"  # a bounded set of series
        requests.labels(path, str(response.status_code)).inc()
        if request.url.path == "/predict":
            latency.observe(time.perf_counter() - start)
        return response

    def check(body: PredictIn) -> list[str]:
        texts = [body.text] if isinstance(body.text, str) else body.text
        if not texts:
            raise HTTPException(422, "text is an empty list: send one text or a list of 1 to "
                                     f"{max_batch} non-empty texts")
        if len(texts) > max_batch:
            raise HTTPException(413, f"a batch of {len(texts)} texts is over the limit of {max_batch} a request")
        for i, t in enumerate(texts):
            if not t.strip():
                raise HTTPException(422, f"text {i} is empty: every text needs at least one non-space character")
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as e:  # a lone surrogate ("\ud800"): valid JSON, not text
                raise HTTPException(422, f"text {i} is not valid Unicode ({e.reason} at character {e.start}): "
                                         "send UTF-8 text") from None
            if len(t) > max_chars:
                raise HTTPException(413, f"text {i} has {len(t):,} characters, over the limit of {max_chars:,}")
        return texts

    def answer(texts, out) -> dict:
        probs, tokens, unknown = out
        pred = probs.argmax(-1)
        n_texts.inc(len(texts))
        n_chars.inc(sum(len(t) for t in texts))
        n_tokens.inc(int(tokens.sum()))
        n_unk.inc(int(unknown.sum()))
        for p in pred:
            by_label.labels(m.labels[p]).inc()
        return {"labels": [m.labels[p] for p in pred], "probabilities": np.round(probs.astype(float), 4).tolist()}

    if batcher is None:
        @app.post("/predict")
        def predict(body: PredictIn):  # plain def: FastAPI runs it in its thread pool
            texts = check(body)
            return answer(texts, m.predict(texts))
    else:
        @app.post("/predict")
        async def predict(body: PredictIn):  # waits without blocking; the batcher thread computes
            texts = check(body)
            loop = asyncio.get_running_loop()
            fut = loop.create_future()

            def done(out, err):
                loop.call_soon_threadsafe(lambda: fut.done()
                                          or (fut.set_exception(err) if err else fut.set_result(out)))
            batcher.queue.put((texts, done))
            return answer(texts, await fut)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model, "folder": str(folder), "labels": m.labels,
                "threads": torch.get_num_threads(), "batching": batching, "temperature": m.temperature,
                "max_len": m.max_len,
                "mean_batch": float(np.mean(batcher.batches[-1000:])) if batcher and batcher.batches else None,
                "limits": {"max_chars": max_chars, "max_batch": max_batch, "max_body_bytes": MAX_BODY}}

    @app.get("/metrics")
    def metrics_endpoint():
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(model: str = "minilm", host: str = "127.0.0.1", port: int = 8000, parent: int | None = None,
          log: str | None = None, **options):
    """Run `build_app` under uvicorn until interrupted (``labkit serve``). ``parent``: exit
    when that process is gone (how `Server` makes sure no service outlives its notebook),
    deleting its ``log`` file, which that parent would have deleted."""
    import uvicorn
    app = build_app(model, **options)
    if parent:
        def watch():  # orphaned (the parent died and we were re-parented): stop like on Ctrl-C
            while os.getppid() == parent:
                time.sleep(0.5)
            if log:
                Path(log).unlink(missing_ok=True)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, daemon=True).start()
    # timeout_graceful_shutdown: SIGTERM completes even while a client holds a connection open
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)


# ---------------------------------------------------------------- the service as a child process

_RUNNING: set = set()


class Server:
    """`serve` (what ``labkit serve`` runs) in a child process on a free port of 127.0.0.1:
    ``with Server("student") as s: httpx.post(s.url + "/predict", ...)``, or
    ``s = Server(...).start()`` ... ``s.stop()``."""

    def __init__(self, model: str = "minilm", threads: int | None = None, batching: bool = False,
                 max_wait_ms: float = 5.0, start_timeout: float = 120.0):
        self.model, self.start_timeout = model, start_timeout
        self.options = {"model": str(model), "threads": threads or measure.threads(), "batching": batching,
                        "max_wait_ms": max_wait_ms}
        self.proc, self.url, self.log = None, None, None

    def start(self, wait: bool = True) -> "Server":
        """Launch the service; with ``wait``, return once it answers ``/health`` (else call `wait`)."""
        model_folder(self.model)  # a missing model: the clear error here, not a timeout
        (port,) = procs.free_ports(1)
        self.url = f"http://127.0.0.1:{port}"
        fd, name = tempfile.mkstemp(prefix="labkit-serve-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        code = "import json, sys; from labkit.labs.evaluate.serve import serve; serve(**json.loads(sys.argv[1]))"
        options = {**self.options, "host": "127.0.0.1", "port": port, "parent": os.getpid(), "log": str(self.log)}
        self.proc = procs.spawn([sys.executable, "-c", code, json.dumps(options)], self.log)
        _RUNNING.add(self)
        return self.wait() if wait else self

    def wait(self) -> "Server":
        import httpx

        def healthy() -> bool:
            try:
                return client.get(self.url + "/health").status_code == 200
            except httpx.HTTPError:
                return False
        # one client for every poll: each httpx.get builds a client and its TLS context, ~45 ms
        # of CPU taken from the starting service ten times a second
        with httpx.Client(timeout=1) as client:
            try:
                procs.wait_until(healthy, self.proc, self.start_timeout, self.log, "the service (GET /health)",
                                 every=0.1)
            except (RuntimeError, TimeoutError):
                self.stop()
                raise
        return self

    def output(self) -> str:
        """The last lines the service wrote (its log)."""
        return procs.tail(self.log, 40) if self.log else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly), then SIGKILL after 10 s; idempotent."""
        procs.stop([self.proc], grace=10)
        if self.log:
            self.log.unlink(missing_ok=True)
        _RUNNING.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_all() -> None:
    """Stop every service this process started."""
    for s in list(_RUNNING):
        s.stop()


atexit.register(stop_all)


# ---------------------------------------------------------------- drift

def metrics(url: str) -> dict:
    """``/metrics`` as {"name{label=value}": number} (Prometheus text, parsed)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(httpx.get(local_url(url) + "/metrics", timeout=10).text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out
