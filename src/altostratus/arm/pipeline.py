"""The one request pipeline: every ARM call goes through it, over HTTP or from inside the server.

Why one: authentication, authorization, api-version and subscription checks are security rules, and two
copies of them drift apart. The HTTP endpoint (arm/endpoint.py) and in-process callers such as template
deployments (resources/deployment_client.py) both describe a request as a :class:`PipelineRequest` and get a
Response back; only the translation to and from their own shapes is theirs.

Order matters and mirrors ARM: match the route (to learn whether it is public), authenticate (a token verified
earlier comes from the token cache; an in-process caller is already known), take the caller's role from the
directory (never from the token: :meth:`Pipeline.with_role`), refuse admin namespaces and
operator routes to tenants, check the api-version, run the route's prepare step if it has one (the network
fetches a handler needs happen there, outside any transaction, so a slow upstream never holds the write lock;
the subscription is decided just before it, from its cache or a short read, so nothing is fetched for a
subscription that is not the caller's),
then, in the handler's own transaction, check that the principal still exists and that the subscription in the
path is the caller's and writable, run the handler, and after the commit run the work it scheduled and wake the
operation runner. Every failure is an ArmError.

Lean where it is hot: each check can decide from its cache (a verified token, a principal found within the
recheck window, a subscription looked up within its TTL) without a thread or a transaction, and a read whose
answer is still current (arm/answer_cache.py) is answered from there once every check has passed, with no
transaction at all (:meth:`Pipeline.answer_from_caches`). Anything a cache cannot decide goes the whole way,
on a worker thread: the same checks, in the same order, with the same errors.
"""

from __future__ import annotations

import itertools
import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm.access import authorize
from altostratus.arm.answer_cache import AnswerCache, Key, Reply
from altostratus.arm.auth import cloud_audiences
from altostratus.arm.body_limits import check_body, check_request_uri
from altostratus.arm.caller import Caller
from altostratus.arm.context import Platform, RequestContext
from altostratus.arm.errors import ArmError, authorization_failed
from altostratus.arm.lenient_json import normalise_body
from altostratus.arm.routing import ANY_VERSION, NO_VERSION, Access, Route, Router, missing_type
from altostratus.arm.subscription_cache import visible
from altostratus.store.models import Principal, Subscription, User

FORM = "application/x-www-form-urlencoded"  # the token endpoint's bodies: not JSON

ADMIN_NAMESPACE = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*\.Admin$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PipelineRequest:
    """A request as the pipeline sees it, whoever sent it.

    ``caller`` is set by in-process callers that act for a principal authenticated earlier (a deployment acts
    as the principal who started it); HTTP requests leave it ``None`` and carry their Authorization header.
    """

    method: str  # upper case
    path: str  # as the client addressed it (named in authorization errors)
    segments: list[str]
    query: dict[str, str]  # keys lower-cased
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    base_url: str  # scheme://host[:port] as the client addressed us
    request_id: str
    caller: Caller | None = None
    source: str | None = None  # the peer address of an HTTP request


@dataclass(slots=True)
class Admitted:
    """A request that passed the checks decided before any transaction: what the handler step needs."""

    request: PipelineRequest
    route: Route
    params: dict[str, str]
    caller: Caller | None
    api_version: str | None


class Pipeline:
    """The checks and the handler's transaction, in one place. Thread-safe."""

    def __init__(self, services: Platform, router: Router) -> None:
        self.services = services
        self.router = router
        db = services.db
        self.answers = AnswerCache(db.versions, enabled=db.url.startswith("sqlite"))

    def call(self, request: PipelineRequest) -> Reply:
        """Runs a request to completion on this thread (in-process callers, which run on worker threads)."""
        route, params, other_method = self.router.match(request.method, request.segments)
        caller = request.caller
        if caller is None and (route is None or route.access is not Access.PUBLIC):
            audiences = self.audiences(request.base_url)
            caller = self.services.tokens.verify_header(request.headers.get("authorization"), audiences)
        if caller is not None:
            caller = self.with_role(caller)
        admitted = self.admit(request, route, params, other_method, caller)
        return self.answer_from_caches(admitted) or self.execute(admitted)

    def audiences(self, base_url: str) -> frozenset[str]:
        """The audiences a token must be for (see :func:`cloud_audiences`)."""
        return cloud_audiences(self.services.settings.arm_endpoint, base_url)

    def with_cached_role(self, caller: Caller) -> Caller | None:
        """The caller with its role in the directory when that was looked up within the recheck window."""
        role = self.services.tokens.recent_role(caller.client_id)
        return None if role is None else replace(caller, role=role)

    def with_role(self, caller: Caller) -> Caller:
        """The caller with its role in the directory (a short read on a cache miss): a token, or an in-process
        caller recorded earlier, says who; only the directory says what they may do."""
        known = self.with_cached_role(caller)
        if known is not None:
            return known
        tokens = self.services.tokens
        epoch = tokens.epoch
        with self.services.db.session(readonly=True) as db:
            role = tokens.check_principal_active(caller.client_id, lambda cid: role_in_directory(db, cid), epoch)
        return replace(caller, role=role)

    def admit(
        self,
        request: PipelineRequest,
        route: Route | None,
        params: dict[str, str],
        other_method: bool,
        caller: Caller | None,
    ) -> Admitted:
        """The checks after authentication that need no database: admin refusal, the route, the api-version."""
        if caller is not None and not caller.is_operator:
            # Checked before route existence: tenants learn nothing about admin APIs, not even which exist.
            admin = admin_namespace(request.segments)
            if admin or (route is not None and route.access is Access.OPERATOR):
                action = f"{admin or 'admin'}/{request.method.lower()}"
                raise authorization_failed(caller.client_id, action, request.path)
        if route is None:
            raise self.no_route(request.method, request.segments, other_method)
        check_request_uri(request.segments, request.query)  # once, for every request, before any handler
        api_version = self.check_api_version(route, request.query.get("api-version"))
        if request.body and not request.headers.get("content-type", "").startswith(FORM):
            # Once, for every body, before any handler parses it: Json.NET's leniency, then the limits.
            body = normalise_body(request.body)
            if body is not request.body:
                request = replace(request, body=body)
            check_body(request.body)
        return Admitted(request, route, params, caller, api_version)

    def answer_from_caches(self, admitted: Admitted) -> Reply | None:
        """The answer when the checks that need the database are decided by their caches and pass, and a
        current answer of this read is kept, or the route's gate refuses it; None means "execute it" (which
        decides, and may refuse)."""
        gate = admitted.route.gate
        if gate is not None:
            refused = gate(self.services, admitted.request.body, admitted.request.source)
            if refused is not None:
                return Reply.of(refused)
        key = self._answer_key(admitted)
        if key is None:
            return None
        caller = admitted.caller
        if caller is not None:
            if not self.services.tokens.principal_recently_active(caller.client_id):
                return None
            sub_id = admitted.params.get("subscriptionId")
            if sub_id is not None:
                sub = self.services.subscriptions.cached(sub_id)
                if sub is None or not visible(caller, sub):
                    return None
                # A GET: check_writable always passes.
        return self.answers.lookup(key)

    def _answer_key(self, admitted: Admitted) -> Key | None:
        request = admitted.request
        return self.answers.key(
            request.method, admitted.route, admitted.params, request.query, request.base_url, admitted.caller
        )

    def execute(self, admitted: Admitted) -> Reply:
        """The whole request: the checks that need a transaction, the handler in it, the after-commit work;
        the answer is kept for reuse when the route allows it."""
        key = self._answer_key(admitted)
        db = self.services.db
        before = db.versions.current() if key is not None else {}
        recording: AbstractContextManager[set[str]] = db.recording_reads() if key is not None else nullcontext(set())
        with recording as read:
            response = self._run(admitted)
        reply = Reply.of(response)
        if key is not None:
            self.answers.store(key, read, before, reply)
        return reply

    def _run(self, admitted: Admitted) -> Response:
        services = self.services
        request = admitted.request
        epochs = cache_epochs(services)
        prepare = admitted.route.prepare
        prepared = {}
        if prepare is not None:
            if admitted.caller is not None and "subscriptionId" in admitted.params:
                # Before the prepare step's fetch, in a short read-only transaction of its own: nothing is fetched
                # for a subscription the caller may not write to. The request's transaction checks again.
                with services.db.session(readonly=True) as db:
                    sub_id = admitted.params["subscriptionId"]
                    check_subscription(db, services, admitted.caller, sub_id, request.method, request.segments, epochs)
            prepared = prepare(admitted.params, request.body, services)
        for attempt in itertools.count(1):
            try:
                ctx, response = self._transaction(admitted, prepared, epochs)
                break
            except IntegrityError as err:
                # Two requests creating the same new row at once (PostgreSQL runs writers concurrently; SQLite
                # queues them): the loser's insert breaks a unique key. Its transaction rolled back whole, so it
                # runs again and finds the winner's row - as if it had come second, which it did.
                if attempt >= CONCURRENT_CREATE_ATTEMPTS or not _unique_violation(err):
                    raise
        if ctx.extra.get("wake_operations"):
            services.operations.wake()
        for task in ctx.after_commit:
            task()
        return response

    def _transaction(
        self, admitted: Admitted, prepared: dict[str, Any], epochs: tuple[int, int, int]
    ) -> tuple[RequestContext, Response]:
        """The route's handler in the request's own transaction (read-only for GET and HEAD)."""
        services = self.services
        request = admitted.request
        with services.db.session(readonly=request.method in ("GET", "HEAD")) as db:
            ctx = RequestContext(
                method=request.method,
                path="/" + "/".join(request.segments),
                params=admitted.params,
                query=request.query,
                headers=request.headers,
                raw_body=request.body,
                base_url=request.base_url,
                api_version=admitted.api_version,
                caller=admitted.caller,
                db=db,
                services=services,
                request_id=request.request_id,
                source=request.source,
                extra=prepared,
            )
            if admitted.caller is not None:
                check_caller(ctx, admitted.caller, request.segments, epochs)
            response = admitted.route.handler(ctx)
        return ctx, response

    def check_api_version(self, route: Route, value: str | None) -> str | None:
        if route.resource_type == NO_VERSION:
            return value
        if not value:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if route.resource_type == ANY_VERSION:
            return value
        rtype = self.services.registry.get_type(route.resource_type)
        if rtype is None:  # a provider bug: its route names a type it never registered
            raise RuntimeError(f"route {route.template} names unregistered type {route.resource_type}")
        if value.lower() in rtype.api_versions_lower:
            return value
        supported = ", ".join(rtype.api_versions)
        if rtype.arm_native:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{value}' is invalid. The supported versions are '{supported}'.",
            )
        location = self.services.settings.location
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{location}' and API "
            f"version '{value}' for type '{rtype.name}'. The supported api-versions are '{supported}'. The "
            f"supported locations are '{location}'.",
        )

    def no_route(self, method: str, segments: list[str], other_method: bool) -> ArmError:
        path = "/" + "/".join(segments)
        if other_method:
            return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
        lowered = [s.lower() for s in segments]
        if "providers" in lowered:
            i = lowered.index("providers")
            if i + 1 < len(segments):
                ns = self.services.registry.get_namespace(segments[i + 1])
                if ns is None:
                    return ArmError(
                        400,
                        "InvalidResourceNamespace",
                        f"The resource namespace '{segments[i + 1]}' is invalid.",
                    )
                if i + 2 < len(segments):
                    return ArmError(
                        400,
                        "InvalidResourceType",
                        f"The resource type '{missing_type(segments, i)}' could not be found in the namespace "
                        f"'{ns.name}'.",
                    )
        return ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")


def cache_epochs(services: Platform) -> tuple[int, int, int]:
    """The principal, subscription and role-assignment caches' epochs, read before a transaction takes its
    snapshot: an entry forgotten after this point is not refilled from a snapshot that may predate the write
    behind the forget."""
    return services.tokens.epoch, services.subscriptions.epoch, services.access.epoch


def check_caller(ctx: RequestContext, caller: Caller, segments: list[str], epochs: tuple[int, int, int]) -> None:
    """The checks that need the request's transaction: the principal still exists, the subscription in the
    path is the caller's (or the caller's role in it covers the request: arm/access.py), and a subscription
    that is not Enabled is only read."""
    db = ctx.db
    role = ctx.services.tokens.check_principal_active(caller.client_id, lambda c: role_in_directory(db, c), epochs[0])
    if role != caller.role:  # deleted and re-created since the request was admitted
        raise ArmError(401, "InvalidAuthenticationToken", "The principal of the access token has changed.")
    if "subscriptionId" in ctx.params:
        sub_id = ctx.params["subscriptionId"]
        ctx.extra["subscription"] = check_subscription(db, ctx.services, caller, sub_id, ctx.method, segments, epochs)


def role_in_directory(db: Session, client_id: str) -> str | None:
    """The principal's role; None when it is gone or is a disabled user (whose tokens stop working too)."""
    principal = db.get(Principal, client_id)
    if principal is None:
        return None
    user = db.get(User, client_id)
    return None if user is not None and not user.enabled else principal.role


def admin_namespace(segments: list[str]) -> str | None:
    """The ``*.Admin`` namespace a path addresses (the segment after ``providers``), if any."""
    for i, seg in enumerate(segments[:-1]):
        if seg.lower() == "providers" and ADMIN_NAMESPACE.match(segments[i + 1]):
            return segments[i + 1]
    return None


def check_subscription(
    db: Session,
    services: Platform,
    caller: Caller,
    subscription_id: str,
    method: str,
    segments: list[str],
    epochs: tuple[int, int, int],
) -> Subscription:
    """The subscription in the path is the caller's (or the caller's role in it covers the request:
    arm/access.py), and one that is not Enabled is only read. Shared by the request's transaction and the short
    read-only one before a route's prepare step."""
    sub = services.subscriptions.lookup(db, subscription_id, epochs[1])
    if not visible(caller, sub):
        authorize(db, services.access, caller, sub, method, segments, epochs[2])
    check_writable(sub, method, segments)
    return sub


def check_writable(sub: Subscription, method: str, segments: list[str]) -> None:
    """A subscription that is not Enabled is read-only for its own resources (the operator can still fix it)."""
    if method in ("GET", "HEAD") or sub.state == "Enabled" or admin_namespace(segments) is not None:
        return
    raise ArmError(
        409,
        "ReadOnlyDisabledSubscription",
        f"The subscription '{sub.subscription_id}' is {sub.state.lower()} and therefore marked as read only. "
        "You cannot perform any write actions on this subscription until it is re-enabled.",
    )


CONCURRENT_CREATE_ATTEMPTS = 3


def _unique_violation(err: IntegrityError) -> bool:
    """A duplicate key (PostgreSQL SQLSTATE 23505; SQLite's UNIQUE constraint), not another integrity error."""
    code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
    return code == "23505" or "UNIQUE constraint failed" in str(err.orig)
