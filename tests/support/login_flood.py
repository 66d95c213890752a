"""A wrong-secret flood of a token endpoint, run as its own process (``python -m tests.support.login_flood``).

In its own process so that the flood's threads do not share the measuring test's interpreter lock: the test
measures the server's latency, not its own. Bounded in time and attempts; prints a JSON summary (the status
counts, the Retry-After values seen, and when the first 429 came) on exit; ``started`` and ``throttled``
lines before it say when its threads are running and when the first 429 arrived.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections import Counter
from types import FrameType

import httpx


def flood(
    endpoint: str, ca: str, source: str, client_ids: list[str], threads: int, seconds: float
) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    first_429: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()

    def run(index: int) -> None:
        transport = httpx.HTTPTransport(local_address=source, verify=ca)
        with httpx.Client(transport=transport, timeout=30) as client:
            for attempt in range(5000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                data = {
                    "grant_type": "client_credentials",
                    "client_id": client_ids[(index + attempt) % len(client_ids)],
                    "client_secret": "wrong",
                }
                r = client.post(endpoint, data=data)
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 429:
                        retry_after.add(f"{r.headers.get('retry-after')} {r.json().get('error')}")
                        if not first_429:
                            first_429.append(time.monotonic() - start)
                            print("throttled", flush=True)

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    print("started", flush=True)
    for w in workers:
        w.join()
    return {
        "statuses": {str(k): v for k, v in statuses.items()},
        "retry_after": sorted(retry_after),
        "first_429": first_429[0] if first_429 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--client-id", action="append", required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(json.dumps(flood(args.endpoint, args.ca, args.source, args.client_id, args.threads, args.seconds)))


if __name__ == "__main__":
    main()
