"""What every portal page shares: templates, security headers, sessions, CSRF, and turning API errors into
pages (a 401 from the API sends the person to sign in, a 403 is the 403 page, a 404 the 404 page)."""

from __future__ import annotations

import hmac
import json as json_module  # page() has a parameter named json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from altostratus.portal.arm import ApiError, Arm
from altostratus.portal.guided import GuidedRuns
from altostratus.portal.sessions import COOKIE, PortalSession, SessionStore

HERE = Path(__file__).parent
# No inline script or style anywhere: scripts and styles come from /portal/static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class Portal:
    """The server's portal state: the ARM client, the sessions, the templates."""

    def __init__(self, arm: Arm, sessions: SessionStore) -> None:
        self.arm = arm
        self.sessions = sessions
        self.guided = GuidedRuns(arm)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
        )
        self.templates.filters["size"] = human_size
        self.templates.filters["qs"] = lambda s: quote(str(s), safe="")

    def render(
        self, request: Request, template: str, session: PortalSession | None, status: int = 200, **values: Any
    ) -> Response:
        flash = list(session.flash) if session else []
        if session:
            session.flash.clear()
        html = self.templates.get_template(template).render(
            request=request, session=session, csrf=session.csrf if session else "", flash=flash, **values
        )
        return secure(HTMLResponse(html, status))

    def error_page(
        self, request: Request, session: PortalSession | None, status: int, title: str, text: str
    ) -> Response:
        return self.render(request, "error.html", session, status, title=title, text=text)


def human_size(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def sign_in_redirect(request: Request) -> Response:
    """To sign-in, then back here (a POST's page is its Referer's path, when that is ours)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = local_path(request.headers.get("referer", ""), request) or "/"
    return secure(RedirectResponse(f"/sign-in?next={quote(target, safe='')}", 303))


def local_path(value: str, request: Request) -> str | None:
    """``value`` as a path on this site, or None: a redirect after sign-in never leaves the site."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if value.startswith(origin):
        value = value[len(origin) :]
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def form_of(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def first(form: dict[str, list[str]], key: str, default: str = "") -> str:
    values = form.get(key)
    return values[0] if values else default


Handler = Callable[[Request, PortalSession, dict[str, list[str]]], Awaitable[Response]]


def take_field_error(session: PortalSession) -> dict[str, Any]:
    """The field error a form's redirect left in the session (``{"field", "message"}``; empty if none), taken
    out so it shows once; plain flash messages stay for the page's status line."""
    error = next((json_module.loads(f) for f in session.flash if f.startswith("{")), None)
    session.flash[:] = [f for f in session.flash if not f.startswith("{")]
    return error or {}


def back_to(
    location: str,
    session: PortalSession,
    err: ApiError | None = None,
    *,
    fields: dict[str, str] | None = None,
    field: str = "_form",
    message: str = "",
) -> Response:
    """After a form's POST: to ``location`` (303), with the API's refusal shown next to the field its ``target``
    names (``fields`` maps API targets to form fields; else next to ``field``), or with ``message``."""
    if err is not None:
        field = (fields or {}).get(err.target or "", field)
        session.flash.append(json_module.dumps({"field": field, "message": f"{err.code}: {err.message}"}))
    elif message:
        session.flash.append(message)
    return secure(RedirectResponse(location, 303))


def page(portal: Portal, handler: Handler, *, operator: bool = False, json: bool = False) -> Callable[..., Any]:
    """A signed-in page: the session (else sign-in), the CSRF token of every POST (else a 403 page and nothing
    done), the operator check, and the API's errors as pages."""

    async def endpoint(request: Request) -> Response:
        session = portal.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if json:
                return secure(JSONResponse({"error": "signed out"}, 401))
            return sign_in_redirect(request)
        form: dict[str, list[str]] = {}
        if request.method == "POST":
            form = await form_of(request)
            if not hmac.compare_digest(first(form, "csrf"), session.csrf):
                return portal.error_page(
                    request,
                    session,
                    403,
                    "The form has expired",
                    "This form was not sent from your current session (its security token does not match), so "
                    "nothing was done. Go back, reload the page and try again.",
                )
        if operator and not session.is_operator:
            return forbidden(portal, request, session)
        try:
            return await handler(request, session, form)
        except ApiError as err:
            if err.status == 401:
                portal.sessions.drop(session.id)
                return sign_in_redirect(request)
            if err.status == 403:
                return forbidden(portal, request, session)
            if err.status == 404:
                return not_found(portal, request, session, err.message)
            return portal.error_page(request, session, err.status, err.code, err.message)

    return endpoint


def forbidden(portal: Portal, request: Request, session: PortalSession) -> Response:
    return portal.error_page(
        request,
        session,
        403,
        "Not for your account",
        f"You are signed in as {session.user}, who may not open this page. Operator pages are for operators.",
    )


def not_found(portal: Portal, request: Request, session: PortalSession | None, text: str = "") -> Response:
    return portal.error_page(
        request, session, 404, "Not found", text or "There is nothing here, or it is not in your subscriptions."
    )


def since(iso_time: str | None) -> float | None:
    """Seconds since an ISO time the API gave (None when it gave none)."""
    from datetime import datetime

    if not iso_time:
        return None
    try:
        return time.time() - datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
