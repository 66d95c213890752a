"""Shared Key authorization of blob requests, as azure-storage-blob, the az CLI and AzCopy sign them.

The client signs a canonical string of the request (verb, standard headers, ``x-ms-*`` headers, the account and
path, the query parameters) with HMAC-SHA256 under one of the account's two keys (``listKeys``) and sends
``Authorization: SharedKey <account>:<signature>``. Either key is accepted, so a tenant can rotate them.
Spec: "Authorize with Shared Key" (Azure Storage REST API), version 2009-09-19 and later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from altostratus.storage.blob_errors import BlobError

_STANDARD = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
    "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)  # fmt: skip


def string_to_sign(
    method: str, headers: Mapping[str, str], account: str, raw_path: str, query: Iterable[tuple[str, str]]
) -> str:
    values = []
    for name in _STANDARD:
        value = headers.get(name, "")
        if name == "content-length" and value == "0":
            value = ""  # from 2015-02-21 on, a zero length is signed as empty
        values.append(value)
    ms = sorted((k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-ms-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in ms)
    resource = f"/{account}{raw_path}"
    params: dict[str, list[str]] = {}
    for k, v in query:
        params.setdefault(k.lower(), []).append(v)
    resource += "".join(f"\n{k}:{','.join(sorted(params[k]))}" for k in sorted(params))
    return method.upper() + "\n" + "\n".join(values) + "\n" + canonical_headers + resource


def check_shared_key(
    authorization: str | None,
    account: str,
    keys: list[str],
    method: str,
    headers: Mapping[str, str],
    raw_path: str,
    query: Iterable[tuple[str, str]],
) -> None:
    """Raise 403 AuthenticationFailed unless ``authorization`` is a valid Shared Key signature of this request."""
    if not authorization:
        raise BlobError(
            401 if not keys else 403,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Sign it with one of the account's keys (SharedKey).",
        )
    scheme, _, credential = authorization.partition(" ")
    name, _, signature = credential.strip().rpartition(":")
    if scheme != "SharedKey" or name.lower() != account:
        raise BlobError(
            403,
            "AuthenticationFailed",
            f"Server failed to authenticate the request: use 'SharedKey {account}:<signature>' (bearer tokens and "
            "SAS are not accepted by this blob service).",
        )
    query = list(query)
    for path in dict.fromkeys((raw_path, unquote(raw_path))):
        message = string_to_sign(method, headers, account, path, query).encode()
        for key in keys:
            expected = base64.b64encode(hmac.new(base64.b64decode(key), message, hashlib.sha256).digest()).decode()
            if hmac.compare_digest(expected, signature):
                return
    raise BlobError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
        "correctly including the signature (signed with one of the account's keys).",
    )
