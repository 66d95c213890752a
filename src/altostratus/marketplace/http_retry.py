"""HTTP(S) upstreams of the download engines: which answers are retried, how long to wait, when to give up.

Why one place: the format 1 engine (transfer.py) streams one body with ``Range: bytes=N-``, the extent engine
(extent_http.py) requests each extent apart, but an upstream must get the same treatment from both. Connection
drops, timeouts, 408/425/429 and 5xx are transient: retried with exponential backoff (from ``backoff``,
doubling, at most `MAX_BACKOFF`, or the upstream's ``Retry-After`` up to `MAX_RETRY_AFTER`). 404/410 and other
answers, an untrusted certificate or a compressed body are permanent (`TransferError`). `RetryBudget` bounds
*consecutive* failures only: an attempt that got further than any before resets the count, so a long download
over a link that drops now and then still completes. Every URL in a message goes through `redact_url`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from altostratus.marketplace.transfer_job import TransferError, TransferJob, redact_url

MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 120.0
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

T = TypeVar("T")


class Retry(Exception):
    """A transient upstream failure: retry after a backoff, resuming at the current offset."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


def upstream_client(verify: ssl.SSLContext | bool, max_connections: int | None = None) -> httpx.Client:
    """A client for payload requests: identity encoding, since Range offsets must count the bytes we store."""
    options: dict[str, Any] = {"verify": verify, "timeout": TIMEOUT, "follow_redirects": True}
    if max_connections is not None:
        options["limits"] = httpx.Limits(max_connections=max_connections)
    return httpx.Client(headers={"Accept-Encoding": "identity"}, **options)


def attempt(url: str, request: Callable[[], T]) -> tuple[T | None, Retry | None]:
    """One request of a fetch: its result, or the reason to try again after a transient failure; any other
    HTTP failure ends the transfer."""
    try:
        return request(), None
    except Retry as err:
        return None, err
    except TRANSIENT_ERRORS as err:
        return None, retry_for(url, err)
    except httpx.HTTPError as err:
        raise TransferError("UpstreamError", f"Fetching {redact_url(url)} failed: {err}") from None


def retry_for(url: str, err: httpx.HTTPError) -> Retry:
    """A network error, unless it is a certificate problem: retrying would not fix that."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = f"The certificate of {redact_url(url)} is not trusted: {cause}"
            raise TransferError("UpstreamError", message) from None
        cause = cause.__cause__ or cause.__context__
    return Retry(f"{type(err).__name__}: {err or 'no detail'}")


class RetryBudget:
    """How long to wait before the next attempt, or the end of the transfer when ``retries`` consecutive attempts
    got no further than ``furthest`` (the position - an offset - the fetch had reached)."""

    def __init__(self, job: TransferJob, source: str, furthest: int) -> None:
        self.job, self.source = job, source  # source: redacted, for the message
        self.failures, self.furthest = 0, furthest

    def delay(self, reached: int, retry: Retry) -> float:
        """Count a failed attempt that got as far as ``reached``; exponential backoff, at least the Retry-After."""
        if reached > self.furthest:
            self.failures, self.furthest = 0, reached
        self.failures += 1
        retries = self.job.retries
        if self.failures > retries:
            tries = f"{retries} {'retry' if retries == 1 else 'retries'}"
            raise TransferError("UpstreamError", f"Fetching {self.source} failed after {tries}: {retry.reason}")
        return max(min(self.job.backoff * 2 ** (self.failures - 1), MAX_BACKOFF), retry.delay or 0.0)


def check_status(url: str, response: httpx.Response) -> None:
    """Accept 200 and 206; raise `Retry` for a transient status, `TransferError` for any other."""
    code = response.status_code
    if code in (200, 206):
        return
    what = f"{redact_url(url)} answered HTTP {code} {response.reason_phrase}".rstrip()
    if code in (404, 410):
        raise TransferError("UpstreamNotFound", f"{what}: the upstream does not have this payload.")
    if code in (408, 425, 429) or code >= 500:
        raise Retry(f"HTTP {code} {response.reason_phrase}".rstrip(), _retry_after(response))
    raise TransferError("UpstreamError", f"{what}.")


def check_identity(url: str, response: httpx.Response) -> None:
    """A compressed body would not line up with the offsets we asked for (and store)."""
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding != "identity":
        raise TransferError("UpstreamError", f"{redact_url(url)} sent a '{encoding}'-encoded body despite identity.")


def content_range(header: str) -> tuple[int | None, int | None]:
    """(start, total) of ``bytes START-END/TOTAL`` or ``bytes */TOTAL``; None where absent or unknown."""
    unit, _, spec = header.strip().partition(" ")
    span, _, total = spec.partition("/")
    start = span.split("-", 1)[0]
    if unit.lower() != "bytes":
        return None, None
    return (int(start) if start.isdigit() else None), (int(total) if total.isdigit() else None)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() else None
