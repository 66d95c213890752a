"""A small ARM client over httpx, authenticated from ``credentials.json``.

The CLI never touches the database: everything goes through the same REST API the SDK uses.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from altostratus.config import DEFAULT_DATA_DIR


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.target = status, code, message, target


def credentials_path(data_dir: Path | None = None) -> Path:
    env = os.environ.get("ALTO_CREDENTIALS")
    if env:
        return Path(env)
    return (data_dir or Path(os.environ.get("ALTO_DATA_DIR", DEFAULT_DATA_DIR))).expanduser() / "credentials.json"


class ApiClient:
    def __init__(self, credentials: dict[str, Any], principal: str = "tenant", timeout: float = 60.0) -> None:
        self.credentials = credentials
        self.principal = credentials[principal]
        self.endpoint = credentials["armEndpoint"].rstrip("/")
        self.subscription_id: str = self.principal.get("subscriptionId", "")
        self.http = httpx.Client(verify=credentials["caFile"], timeout=timeout)
        self._token: str | None = None
        self._token_expiry = 0.0

    @classmethod
    def from_file(cls, path: Path, principal: str = "tenant") -> ApiClient:
        return cls(json.loads(path.read_text()), principal)

    def token(self) -> str:
        if self._token is None or time.time() > self._token_expiry - 60:
            r = self.http.post(
                self.credentials["tokenEndpoint"],
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.principal["clientId"],
                    "client_secret": self.principal["clientSecret"],
                    "scope": self.endpoint + "/.default",
                },
            )
            if r.status_code != 200:
                body = r.json()
                raise ApiError(r.status_code, body.get("error", "TokenError"), body.get("error_description", r.text))
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
        r = self.http.request(method, url, params=query, json=body, headers={"Authorization": f"Bearer {self.token()}"})
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
        return self.http.get(url, headers={"Authorization": f"Bearer {self.token()}"})
