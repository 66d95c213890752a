"""Sign-in and sign-out. The password goes to the token endpoint (the password grant) and nowhere else; the
token stays on the server. The sign-in form has its own CSRF token (a double-submit cookie), so no other site
can sign a browser in to an account of its choosing."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal.arm import ApiError
from altostratus.portal.sessions import COOKIE
from altostratus.portal.web import Portal, first, form_of, local_path, secure

SIGNIN_COOKIE = "alto_signin"


def _claims(token: str) -> dict[str, Any]:
    """The token's claims, read (not verified: it came straight from our token endpoint) for the navigation;
    every request is still authorized by the API."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def _next(request: Request, value: str) -> str:
    return local_path(value, request) or ""


def sign_in_page(
    portal: Portal, request: Request, error: str = "", name: str = "", status: int = 200, next_path: str | None = None
) -> Response:
    token = secrets.token_urlsafe(24)
    response = portal.render(
        request,
        "signin.html",
        None,
        status,
        signin_token=token,
        next=_next(request, next_path if next_path is not None else request.query_params.get("next", "")),
        error=error,
        name=name,
    )
    _cookie(response, SIGNIN_COOKIE, token, 3600)
    return response


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    async def get(request: Request) -> Response:
        return sign_in_page(portal, request)

    async def post(request: Request) -> Response:
        form = await form_of(request)
        name, password, next_path = first(form, "name").strip(), first(form, "password"), first(form, "next")
        expected = request.cookies.get(SIGNIN_COOKIE, "")
        if not expected or not hmac.compare_digest(first(form, "signin_token"), expected):
            expired = "The sign-in form expired. Please sign in again."
            return sign_in_page(portal, request, expired, name, 403, next_path)
        if not name or not password:
            return sign_in_page(portal, request, "Enter your user name and password.", name, 400, next_path)
        peer = request.client
        try:
            answer = await portal.arm.password_token(
                name, password, (peer.host, peer.port) if peer else ("127.0.0.1", 0)
            )
        except ApiError as err:
            if err.status == 429:
                text = "Too many sign-in attempts. " + err.message.split(". ", 1)[-1]
            else:
                text = "The user name or password is not right, or the account is disabled."
            return sign_in_page(portal, request, text, name, 401 if err.status != 429 else 429, next_path)
        token = answer["access_token"]
        claims = _claims(token)
        role = "operator" if "operator" in claims.get("roles", []) else "tenant"
        session = portal.sessions.create(claims.get("upn", name), role, token, float(answer.get("expires_in", 3600)))
        target = _next(request, next_path) or ("/admin" if role == "operator" else "/")
        response = secure(RedirectResponse(target, 303))
        _cookie(response, COOKIE, session.id)
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    async def sign_out(request: Request) -> Response:
        session = portal.sessions.get(request.cookies.get(COOKIE))
        form = await form_of(request)
        if session is not None:
            if not hmac.compare_digest(first(form, "csrf"), session.csrf):
                return portal.error_page(request, session, 403, "The form has expired", "Nothing was done.")
            portal.sessions.drop(session.id)
        response = secure(RedirectResponse("/sign-in?signed_out=1", 303))
        response.delete_cookie(COOKIE, path="/")
        return response

    return [("/sign-in", "GET", get), ("/sign-in", "POST", post), ("/sign-out", "POST", sign_out)]
