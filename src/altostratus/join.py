"""Joining a node to a running cloud: the join token's format and the joining node's side of the exchange.

A join token names the node to ask (its URL), a one-time secret, and the SHA-256 fingerprint of the cloud's CA
certificate: ``alto-join1.<base64url of {"u": url, "s": secret, "f": fingerprint}>``. The joining node first
fetches the CA certificate (public) without trusting anything, keeps it only if its fingerprint is the token's,
and then makes the real request over TLS verified against that CA - so a man in the middle gets neither the
secret nor a chance to hand over a database URL of its own. The running node answers with what a node needs:
the database URL, the CA certificate and key (to serve TLS under the cloud's CA and re-issue its own server
certificate), and the operator's credentials file. The token is single-use and short-lived; it is as powerful as
the database password it unlocks, so the API issues it to operators only (compute/join.py).

Here, below every other layer, because both ends use it: the server's API (compute/join.py) and `alto up --join`
(server.py). It needs no database and no provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

PREFIX = "alto-join1."
JOIN_PATH = "/altostratus/join"  # POST {"token": ...}: the node's share of the cloud's secrets
CA_PATH = "/altostratus/join/ca"  # GET: the CA certificate (public; the token pins its fingerprint)


class JoinError(Exception):
    """Joining failed; the message says why and what to do."""


@dataclass(frozen=True)
class JoinToken:
    url: str
    secret: str
    fingerprint: str  # sha256 of the CA certificate's DER, lower-case hex

    def encode(self) -> str:
        body = json.dumps({"u": self.url, "s": self.secret, "f": self.fingerprint}, separators=(",", ":"))
        return PREFIX + base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def parse_token(text: str, url: str | None = None) -> JoinToken:
    """The token as `alto admin node join-token` printed it; ``url`` (``--join``) overrides the node it names."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise JoinError("That is not a join token: get one with `alto admin node join-token` on a running node.")
    raw = text[len(PREFIX) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        token = JoinToken(str(url or data["u"]).rstrip("/"), str(data["s"]), str(data["f"]).lower())
    except (ValueError, KeyError, TypeError) as exc:
        raise JoinError("The join token is damaged (copy it whole, it is one line).") from exc
    if not token.url.startswith("https://"):
        raise JoinError(f"Join over HTTPS: {token.url!r} is not an https:// URL.")
    return token


def fingerprint(ca_pem: bytes) -> str:
    """The CA certificate's fingerprint as a token carries it (SHA-256 of its DER form)."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def fetch(token: JoinToken, timeout: float = 30) -> dict[str, Any]:
    """What the running node hands a joining one: ``databaseUrl``, ``caCertificate``, ``caKey``, ``credentials``."""
    try:
        # The CA is public; what makes it the cloud's is the fingerprint in the token, checked before any use.
        with httpx.Client(verify=False, timeout=timeout) as insecure:  # noqa: S501 - pinned by fingerprint below
            ca = insecure.get(token.url + CA_PATH)
        if ca.status_code != 200:
            raise JoinError(f"{token.url} did not hand out its CA certificate (HTTP {ca.status_code}): is it a node?")
        ca_pem = ca.content
        if fingerprint(ca_pem) != token.fingerprint:
            raise JoinError(
                f"{token.url} presented a CA certificate that is not the one the token names: refusing to join "
                "(a different cloud, or someone in between)."
            )
        context = ssl.create_default_context(cadata=ca_pem.decode())
        with httpx.Client(verify=context, timeout=timeout) as http:
            r = http.post(token.url + JOIN_PATH, json={"token": token.secret})
    except httpx.HTTPError as exc:
        raise JoinError(f"Could not reach {token.url}: {exc}") from exc
    except ValueError as exc:
        raise JoinError(f"{token.url} answered with something that is not a CA certificate: {exc}") from exc
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:500]
        raise JoinError(f"{token.url} refused the join (HTTP {r.status_code}): {message}")
    answer = r.json()
    if fingerprint(answer["caCertificate"].encode()) != token.fingerprint:
        raise JoinError("The node answered with another CA than the one it serves under: refusing to join.")
    return dict(answer)
