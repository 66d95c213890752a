"""A small ARM client over httpx, authenticated from ``credentials.json``.

The CLI never touches the database: everything goes through the same REST API the SDK uses.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from altostratus.cli.failures import credentials_refused, transport_failure
from altostratus.config import DEFAULT_DATA_DIR

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx


class ApiError(Exception):
    """An error to show the user: ARM's code and message, or (code "") a sentence of its own."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.status, self.code, self.message, self.target = status, code, message, target


class Unreachable(ApiError):
    """No HTTP answer at all (server stopped, wrong port, TLS mismatch): :mod:`failures` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "", message)


class CredentialsRefused(ApiError):
    """The token endpoint refused the client id and secret of credentials.json."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "", message)


def import_httpx() -> None:
    """Import httpx without its command-line tool. httpx imports ``httpx._main`` when click and rich are installed
    (they are, for typer and our tables): click, rich.console and pygments, about a third of httpx's import time,
    for a tool `alto` never runs. A ``None`` in ``sys.modules`` makes that import fail as not installed, which httpx
    handles by design (its ``main`` then says how to install the CLI extra)."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    import httpx  # noqa: F401


def credentials_path(data_dir: Path | None = None) -> Path:
    env = os.environ.get("ALTO_CREDENTIALS")
    if env:
        return Path(env)
    return (data_dir or Path(os.environ.get("ALTO_DATA_DIR", DEFAULT_DATA_DIR))).expanduser() / "credentials.json"


class ApiClient:
    def __init__(
        self, credentials: dict[str, Any], principal: str = "tenant", timeout: float = 60.0, source: Path | None = None
    ) -> None:
        self.credentials, self.source = credentials, source
        self.principal = credentials[principal]
        self.endpoint = credentials["armEndpoint"].rstrip("/")
        self.subscription_id: str = self.principal.get("subscriptionId", "")
        import ssl

        import_httpx()
        import httpx  # here, not at the top: commands that never call the API start without it

        self.http = httpx.Client(verify=ssl.create_default_context(cafile=credentials["caFile"]), timeout=timeout)
        self._token: str | None = None
        self._token_expiry = 0.0

    @classmethod
    def from_file(cls, path: Path, principal: str = "tenant") -> ApiClient:
        return cls(json.loads(path.read_text()), principal, source=path)

    def token(self) -> str:
        if self._token is None or time.time() > self._token_expiry - 60:
            r = self._transport(
                "POST",
                self.credentials["tokenEndpoint"],
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.principal["clientId"],
                    "client_secret": self.principal["clientSecret"],
                    "scope": self.endpoint + "/.default",
                },
            )
            if r.status_code != 200:
                try:
                    body = dict(r.json())
                except (ValueError, TypeError):
                    body = {}
                code = str(body.get("error") or "TokenError")
                message = str(body.get("error_description") or r.text or r.reason_phrase)
                if r.status_code == 401:
                    refused = credentials_refused(self.endpoint, code, message, self.source)
                    raise CredentialsRefused(r.status_code, refused)
                raise ApiError(r.status_code, code, message)
            body = r.json()
            self._token = body["access_token"]
            self._token_expiry = time.time() + int(body["expires_in"])
        assert self._token is not None
        return self._token

    def request(
        self, method: str, path: str, api_version: str, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        url = path if path.startswith("http") else self.endpoint + path
        query = {"api-version": api_version, **(params or {})} if not path.startswith("http") else params
        r = self.send(method, url, params=query, json=body)
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                raise ApiError(r.status_code, err.get("code", ""), err.get("message", ""), err.get("target"))
            except (ValueError, KeyError, TypeError):
                raise ApiError(r.status_code, "HttpError", r.text or r.reason_phrase) from None
        return r

    def list_all(self, path: str, api_version: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        r = self.request("GET", path, api_version, params=params)
        while True:
            body = r.json()
            items.extend(body.get("value", []))
            next_link = body.get("nextLink")
            if not next_link:
                return items
            r = self.request("GET", next_link, api_version)

    def get_url(self, url: str) -> httpx.Response:
        """GET an absolute URL the server gave (a status URL, a ``Location``) as is; the caller judges the answer."""
        return self.send("GET", url)

    def send(self, method: str, url: str, headers: dict[str, str] | None = None, **options: Any) -> httpx.Response:
        """A request with the principal's token, answer unjudged; a token the server calls expired is renewed once."""
        for attempt in (1, 2):
            authorized = {**(headers or {}), "Authorization": f"Bearer {self.token()}"}
            r = self._transport(method, url, headers=authorized, **options)
            if attempt == 1 and r.status_code == 401 and _error_code(r) == "ExpiredAuthenticationToken":
                self._token = None  # our clock and the server's disagree, or the token outlived its use
                continue
            break
        return r

    def _transport(self, method: str, url: str, **options: Any) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, url, **options)
        except httpx.TransportError as exc:
            raise Unreachable(transport_failure(exc, url, self.credentials.get("caFile"), self.source)) from exc


def _error_code(r: httpx.Response) -> str | None:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None
