"""The baseline of bench/api.py: a minimal uvicorn app answering each captured route with our captured answer.

Why constants of our own answers: the ratio must measure our pipeline (routing, token and subscription checks,
the database, rendering), not the size of what it renders; a page of 100 VMs costs TLS and the kernel far more
than a resource group. So the baseline answers each route with the status and the very body we answered,
looked up by method and path (writes, whose paths carry a fresh name per request, by method), with a
Content-Length as Starlette sends one. Its uvicorn settings are those of ``alto up`` (altostratus/server.py):
same certificate and key, no access log, no lifespan.

Run by bench/api.py as:  python bench/api_baseline.py ROUTES_JSON DATA_DIR PORT
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def load_answers(routes: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], Answer], dict[str, Answer]]:
    """Answers by (method, path?query), and by method alone for the writes."""
    exact: dict[tuple[str, str], Answer] = {}
    by_method: dict[str, Answer] = {}
    for r in routes:
        body = r["answer"].encode()
        headers = [(b"content-length", str(len(body)).encode())]
        if r["content_type"]:
            headers.append((b"content-type", r["content_type"].encode()))
        answer = (int(r["status"]), headers, body)
        exact[(r["method"], r["target"])] = answer
        by_method[r["method"]] = answer
    return exact, by_method


def make_app(routes: list[dict[str, Any]]) -> Callable[..., Any]:
    exact, by_method = load_answers(routes)
    missing: Answer = (404, [(b"content-length", b"0")], b"")

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        method = scope["method"]
        if method in ("PUT", "PATCH"):  # read the body, as any handler of a write must
            while (await receive()).get("more_body"):
                pass
        target = scope["raw_path"].decode() + "?" + scope["query_string"].decode()
        status, headers, body = exact.get((method, target)) or by_method.get(method, missing)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    routes_file, data_dir, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    uvicorn.run(
        make_app(json.loads(Path(routes_file).read_text())),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(data_dir / "server.pem"),
        ssl_keyfile=str(data_dir / "server-key.pem"),
        log_config=None,
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
