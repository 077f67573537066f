"""Lab 09: load tests against a service on this machine (127.0.0.1 only), bounded in requests
and in seconds, each in its own thread and event loop (so they run inside Jupyter).

- `closed_loop`: N clients, each sending its next request as soon as its last is answered.
  The load it offers follows the service: when the service slows down, the clients send
  less, and the requests that would have arrived meanwhile are never sent, so their waiting
  is never measured ("coordinated omission"). Right for "how much can it do?".
- `open_loop`: requests sent at a fixed mean rate (Poisson arrivals, seeded) whatever the
  service does, each latency measured from the request's *scheduled* send time: the waiting
  users arriving on their own schedule would see, queueing included. Right for "how long
  does a user wait at this traffic?".

Leaves out: traffic from other machines, TLS, warm-up phases (the first requests count).
"""
import asyncio
import threading
import time
from urllib.parse import urlparse

import numpy as np

from labkit.core import measure


def local_url(url: str) -> str:
    """``url`` without a trailing slash; refuses any host but this machine."""
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"loadtest only targets a service on this machine (127.0.0.1), not {host!r}")
    return url.rstrip("/")


async def _post(c, url, body, since, lat, state):
    """POST one request; a 200 adds its latency counted from ``since``, anything else an error
    or a timeout in ``state``."""
    import httpx
    try:
        r = await c.post(url + "/predict", json=body)
        if r.status_code == 200:
            lat.append(time.perf_counter() - since)
        else:
            state["errors"] += 1
            state["kinds"][str(r.status_code)] = state["kinds"].get(str(r.status_code), 0) + 1
    except httpx.TimeoutException:
        state["timeouts"] += 1
    except httpx.HTTPError as e:  # a failed connection: which kind, so a failure can be explained
        state["errors"] += 1
        state["kinds"][type(e).__name__] = state["kinds"].get(type(e).__name__, 0) + 1


async def _load(url, texts, concurrency, seconds, max_requests, batch, timeout):
    import httpx
    lat, state = [], {"sent": 0, "errors": 0, "timeouts": 0, "kinds": {}}
    deadline = time.perf_counter() + seconds

    async def client(c):
        while time.perf_counter() < deadline and state["sent"] < max_requests:
            i = state["sent"]
            state["sent"] += 1
            body = {"text": texts[i % len(texts)] if batch == 1 else
                    [texts[(i * batch + j) % len(texts)] for j in range(batch)]}
            await _post(c, url, body, time.perf_counter(), lat, state)

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(concurrency)))
    return lat, state, time.perf_counter() - start


def closed_loop(url: str, texts, concurrency: int = 8, seconds: float = 10.0, max_requests: int = 100_000,
                batch: int = 1, timeout: float = 30.0) -> dict:
    """Closed loop: ``concurrency`` clients, each sending its next request as soon as the last is answered,
    for ``seconds`` (or ``max_requests`` in all), ``batch`` texts a request cycled from
    ``texts``. Returns {requests, requests_per_s, reviews_per_s, p50_ms, p95_ms, p99_ms,
    errors, error_kinds, timeouts, seconds, latencies_ms}: errors are non-200 answers and failed
    connections (``error_kinds`` counts them by status code or exception), timeouts the
    requests unanswered within ``timeout`` seconds. Runs in its
    own thread and event loop, so it works inside Jupyter, whose loop is already running."""
    url = local_url(url)
    texts = list(texts)
    if not texts or concurrency < 1 or batch < 1 or not 0 < seconds <= 600 or max_requests < 1:
        raise ValueError(f"closed_loop needs texts, concurrency >= 1, batch >= 1, 0 < seconds <= 600 and "
                         f"max_requests >= 1; got {len(texts)} texts, {concurrency}, {batch}, {seconds}, "
                         f"{max_requests}")
    box = {}
    t = threading.Thread(target=lambda: box.update(out=asyncio.run(
        _load(url, texts, concurrency, seconds, max_requests, batch, timeout))))
    with measure.afresh():  # a load test runs again on every run: its seconds are reported on their own
        t.start()
        t.join(seconds + timeout + 30)
    if "out" not in box:
        raise TimeoutError("the load test did not finish in time")
    lat, state, wall = box["out"]
    ms = np.array(lat) * 1000
    return {"requests": len(lat), "requests_per_s": round(len(lat) / wall, 2),
            "reviews_per_s": round(len(lat) * batch / wall, 2), **_percentiles(ms),
            "errors": state["errors"], "error_kinds": state["kinds"], "timeouts": state["timeouts"],
            "seconds": round(wall, 2), "concurrency": concurrency, "batch": batch,
            "latencies_ms": [round(float(x), 2) for x in ms]}


async def _wait_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.perf_counter()))


async def _open(url, texts, offsets, timeout):
    import httpx
    lat, state = [], {"errors": 0, "timeouts": 0, "kinds": {}}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as c:
        start = time.perf_counter()

        async def one(i):
            scheduled = start + offsets[i]
            await _wait_until(scheduled)
            await _post(c, url, {"text": texts[i % len(texts)]}, scheduled, lat, state)  # timed from when it was due
        await asyncio.gather(*(one(i) for i in range(len(offsets))))
    return lat, state, time.perf_counter() - start


def open_loop(url: str, texts, rate: float, requests: int = 300, timeout: float = 30.0, seed: int = 0) -> dict:
    """Open loop: ``requests`` single-text requests at ``rate`` a second on average (Poisson
    arrivals drawn with ``seed``), each sent at its scheduled time whether or not earlier
    ones were answered. Latency runs from that scheduled time, so a late send counts as
    waiting. Returns {rate, sent, answered, p50_ms, p95_ms, p99_ms, errors, timeouts,
    seconds, schedule_s, latencies_ms}. Bounded: a schedule (the drawn arrivals) over 600 s
    is refused, and the test is abandoned (TimeoutError) ``2 x timeout + 30`` s after it."""
    url, texts = local_url(url), list(texts)
    if not texts or not rate > 0 or requests < 1:
        raise ValueError(f"open_loop needs texts, rate > 0 and requests >= 1; got {len(texts)} texts, rate {rate}, "
                         f"{requests} requests")
    offsets = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, requests))  # the scheduled send times
    if offsets[-1] > 600:
        raise ValueError(f"{requests} requests at {rate} a second take {offsets[-1]:.0f} s; "
                         "keep a schedule under 600 s")
    box = {}
    t = threading.Thread(target=lambda: box.update(out=asyncio.run(_open(url, texts, offsets, timeout))))
    with measure.afresh():
        t.start()
        t.join(offsets[-1] + 2 * timeout + 30)
    if "out" not in box:
        raise TimeoutError("the open-loop load test did not finish in time")
    lat, state, wall = box["out"]
    ms = np.array(lat) * 1000
    return {"rate": rate, "sent": requests, "answered": len(lat), **_percentiles(ms), "errors": state["errors"],
            "error_kinds": state["kinds"], "timeouts": state["timeouts"], "seconds": round(wall, 2),
            "schedule_s": round(float(offsets[-1]), 2),
            "latencies_ms": [round(float(x), 2) for x in ms]}


def _percentiles(ms) -> dict:
    pct = (lambda q: round(float(np.percentile(ms, q)), 2)) if len(ms) else (lambda q: float("nan"))
    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}
