"""One sentence for each way a command fails before the API can answer: what it tried, why it failed, what to do.

Why: without this, a stopped server or a wrong port showed a traceback of httpx and ssl internals hundreds of lines
long, which names neither the address tried nor the fix. ``--debug`` (or ``ALTO_DEBUG=1``) still shows the
traceback for whoever needs it.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx


DEBUG_ENV = "ALTO_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def show_traceback(exc: BaseException) -> None:
    """The whole traceback on stderr, only when ``--debug`` asked for it."""
    if debugging():
        traceback.print_exception(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reason(exc: BaseException) -> str:
    """The innermost cause in words: ``connection refused``, ``certificate verify failed: self-signed ...``."""
    import ssl  # here: only a failure needs it

    for cause in reversed(_chain(exc)):
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return f"certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return f"TLS error {cause.reason}"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text).rstrip(".")


def _is_tls(exc: BaseException) -> bool:
    import ssl

    return any(isinstance(c, ssl.SSLError) or "[SSL" in str(c) for c in _chain(exc))


def origin(url: httpx.URL | str) -> str:
    import httpx  # here, not at the top: `alto --help` starts without it

    url = httpx.URL(str(url))
    return f"{url.scheme}://{url.netloc.decode()}"


def transport_failure(exc: httpx.TransportError, url: str, ca_file: str | None, source: Path | None) -> str:
    """The sentence for a request that got no HTTP answer from ``url``."""
    import httpx

    where = origin(url)
    elsewhere = "or pass the data dir of the server you mean with --data-dir"
    if source:
        elsewhere += f" (this address is from {source})"
    if _is_tls(exc):
        return (
            f"The TLS check of {where} failed ({_reason(exc)}): its certificate is not from the CA in "
            f"{ca_file or 'use'}. The server runs with another data dir, or something else listens there: "
            f"restart it with `alto up`, {elsewhere}."
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"{where} did not answer in time ({_reason(exc)}): is the server overloaded? Try again, {elsewhere}."
    return f"Cannot reach the server at {where} ({_reason(exc)}). Is it running? Start it with `alto up`, {elsewhere}."


def credentials_refused(endpoint: str, code: str, message: str, source: Path | None) -> str:
    """The sentence for a token request the server refused: the secret was replaced or belongs elsewhere."""
    what = f"the credentials in {source}" if source else "the credentials"
    return (
        f"{origin(endpoint)} refused {what} ({code}: {message.rstrip('.')}). They were replaced or deleted, or "
        "belong to another server: use the credentials.json of the server you mean (--data-dir)."
    )


def unexpected(exc: BaseException) -> str:
    """The sentence for anything else (a bug): what happened, and how to see where."""
    httpx = sys.modules.get("httpx")  # not loaded: the failure cannot be one of its errors
    if httpx is not None and isinstance(exc, httpx.TransportError):
        try:
            return transport_failure(exc, str(exc.request.url), None, None)
        except RuntimeError:  # no request attached
            pass
    return f"alto failed: {type(exc).__name__}: {exc}. Run it again with --debug to see where."
