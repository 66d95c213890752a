"""Limits every JSON request body must meet before anything parses it: nesting depth and number size.

Python's parser and every recursive walk after it (PATCH merges, the secret split, template evaluation) recurse
once per nesting level, so a body nested a few thousand deep ends in ``RecursionError``; a 5,000-digit integer
trips the interpreter's int-to-string limit (``ValueError``); a 20-digit one overflows a 64-bit database column;
``1e999`` parses as infinity, which PostgreSQL's JSON type refuses. Checking the raw bytes once, in the pipeline,
refuses all of these with one clear 400 before any handler or parser sees them, whatever parser (strict or the
deployments' lenient one) comes next.

The depth limit is 64 levels of objects and arrays, Json.NET's default ``MaxDepth`` (what Azure's own front end
parses with); the deepest documented bodies (a deployment with an inline nested template) stay far below it.
Integers must fit a signed 64-bit number and floats must be finite, as the ARM contract's ``int64``/``double``.
"""

from __future__ import annotations

import math
import re
from itertools import accumulate

from altostratus.arm.errors import ArmError

MAX_DEPTH = 64
# Azure Resource Manager refuses request bodies over 4 MB (413 RequestContentTooLarge); so does this cloud, while
# reading them: an anonymous client's 200 MB PUT used to be read whole (and kept) before its 401.
MAX_BODY_BYTES = 4 * 1024 * 1024
INT64_MAX = 2**63 - 1

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = b"{}[]"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEP = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}
# Only bodies with a long digit run or an exponent can hold an out-of-range number: the exact check runs on those.
_SUSPECT = re.compile(rb"\d{19}|[eE][+-]?\d")
_NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][+-]?\d+)?")
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or the reverse: half a character, which no UTF-8
# text (a database column, a log line, the deployment's stored source) can hold.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)

# A \u0000 escape (after an even number of backslashes, so not an escaped backslash followed by "u0000"):
# PostgreSQL text and jsonb cannot hold NUL, so it was a 500 there and stored on SQLite; refused on both alike.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def too_large(message: str) -> ArmError:
    return ArmError(
        400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {message}"
    )


def content_too_large() -> ArmError:
    return ArmError(
        413,
        "RequestContentTooLarge",
        f"The request content size exceeds the maximum size of {MAX_BODY_BYTES // (1024 * 1024)} MB.",
    )


def check_body(raw: bytes) -> None:
    """Refuse (400 InvalidRequestContent) a body nested deeper than :data:`MAX_DEPTH`, with an out-of-range number
    or with half a character or a NUL in a string. Malformed JSON passes: the parser after this reports it, placed.
    """
    if b"\\u" in raw and _LONE_SURROGATE.search(raw):
        raise too_large("a string holds an unpaired UTF-16 surrogate escape (half a character).")
    if b"\\u0000" in raw and _NUL.search(raw):
        raise too_large("a string holds a NUL character (\\u0000).")
    outside_strings = _STRING.sub(b'""', raw)
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    if brackets and max(accumulate(map(_STEP.__getitem__, brackets))) > MAX_DEPTH:
        raise too_large(f"objects and arrays are nested more than {MAX_DEPTH} levels deep.")
    if _SUSPECT.search(outside_strings) is None:
        return
    for match in _NUMBER.finditer(outside_strings):
        token = match.group()
        if match.group(1) is None and match.group(2) is None:
            if len(token.lstrip(b"-")) > 19 or not -INT64_MAX - 1 <= int(token) <= INT64_MAX:
                raise too_large(f"the integer '{_shorten(token)}' is outside the 64-bit range.")
        elif not math.isfinite(float(token)):
            raise too_large(f"the number '{_shorten(token)}' is too large for a double.")


def check_request_uri(segments: list[str], query: dict[str, str]) -> None:
    """Refuse (400 InvalidRequestUri) a NUL (``%00``) in the path or the query. Names and query values reach
    database queries, and PostgreSQL text cannot hold NUL: a deployment, quota or image name with one was a 500
    there (found by the fuzz suite), and on SQLite a name no other request could address."""
    if any("\x00" in s for s in segments) or any("\x00" in k or "\x00" in v for k, v in query.items()):
        raise ArmError(400, "InvalidRequestUri", "The request URI is invalid: it holds a NUL character (%00).")


def _shorten(token: bytes) -> str:
    text = token.decode("ascii")
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
