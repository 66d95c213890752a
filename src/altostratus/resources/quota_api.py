"""The ``*.Admin`` quota API and the tenant usage API of a service whose quotas have no table of their own.

Microsoft.Network.Admin and Microsoft.Storage.Admin quotas are named sets of limits (``service_quotas``), read and
written at ``/subscriptions/{s}/providers/{ns}.Admin/locations/{location}/quotas/{name}`` as Azure Stack Hub does.
``Default Quota`` always exists (Azure Stack's defaults until the operator changes it). A quota a plan names
cannot be deleted. The usage API (``/providers/{ns}/locations/{location}/usages``) answers a subscription's
effective limit and usage per field, from :func:`altostratus.resources.tenancy.quota_report`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.resources.tenancy import DEFAULT_QUOTA, QuotaField, QuotaKind, plans_using_quota, quota_report
from altostratus.store.models import ServiceQuota

NAME_MAX = 128


def stored_limits(
    admin_namespace: str, fields: tuple[QuotaField, ...]
) -> Callable[[Session, str], dict[str, int] | None]:
    """The ``load`` of a :class:`QuotaKind` kept in ``service_quotas``."""
    defaults = {f.name: f.default for f in fields}

    def load(db: Session, name: str) -> dict[str, int] | None:
        row = db.get(ServiceQuota, (admin_namespace.lower(), name.lower()))
        if row is not None:
            return {**defaults, **row.limits}
        return dict(defaults) if name.lower() == DEFAULT_QUOTA.lower() else None

    return load


def check_limits(kind: QuotaKind, props: dict[str, Any], current: dict[str, int]) -> dict[str, int]:
    values = dict(current)
    for f in kind.fields:
        if f.name in props:
            v = props[f.name]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**31 - 1:
                raise invalid_parameter(f"'{f.name}' must be a non-negative whole number.", f"properties.{f.name}")
            values[f.name] = v
    return values


class QuotaApi:
    """The admin quota routes of one kind."""

    def __init__(self, kind: QuotaKind) -> None:
        self.kind = kind
        self.load = kind.load

    def render(self, ctx: RequestContext, name: str, limits: dict[str, int]) -> dict[str, Any]:
        loc = ctx.services.settings.location
        ns = self.kind.admin_namespace
        return {
            "id": f"/subscriptions/{ctx.params['subscriptionId']}/providers/{ns}/locations/{loc}/quotas/{name}",
            "name": f"{loc}/{name}",
            "type": f"{ns}/locations/quotas",
            "location": loc,
            "properties": dict(limits),
        }

    def _row(self, db: Session, name: str) -> ServiceQuota | None:
        return db.get(ServiceQuota, (self.kind.admin_namespace.lower(), name.lower()))

    def list(self, ctx: RequestContext) -> Response:
        rows = list(
            ctx.db.scalars(
                select(ServiceQuota)
                .where(ServiceQuota.namespace_key == self.kind.admin_namespace.lower())
                .order_by(ServiceQuota.name_key)
            )
        )
        items = [self.render(ctx, r.name, {**self.kind.defaults, **r.limits}) for r in rows]
        if not any(r.name_key == DEFAULT_QUOTA.lower() for r in rows):
            items.insert(0, self.render(ctx, DEFAULT_QUOTA, self.kind.defaults))
        return json_response({"value": items})

    def get(self, ctx: RequestContext) -> Response:
        name = ctx.params["quotaName"]
        limits = self.load(ctx.db, name)
        if limits is None:
            raise ArmError(404, "NotFound", f"The quota '{name}' was not found.")
        row = self._row(ctx.db, name)
        return json_response(self.render(ctx, row.name if row else DEFAULT_QUOTA, limits))

    def put(self, ctx: RequestContext) -> Response:
        name = ctx.params["quotaName"]
        if len(name) > NAME_MAX:
            raise invalid_parameter(f"A quota name has at most {NAME_MAX} characters.", "quotaName")
        props = ctx.properties()
        values = check_limits(self.kind, props, self.load(ctx.db, name) or self.kind.defaults)
        row = self._row(ctx.db, name)
        created = row is None
        if row is None:
            row = ServiceQuota(namespace_key=self.kind.admin_namespace.lower(), name_key=name.lower(), name=name)
            ctx.db.add(row)
        row.limits = values
        return json_response(self.render(ctx, row.name, values), 201 if created else 200)

    def delete(self, ctx: RequestContext) -> Response:
        name = ctx.params["quotaName"]
        row = self._row(ctx.db, name)
        if row is None:
            return empty(204)
        users = plans_using_quota(ctx.db, self.kind.admin_namespace, name)
        if users:
            raise ArmError(409, "Conflict", f"The quota '{name}' is used by plan(s) {', '.join(users)}.")
        ctx.db.delete(row)
        return empty(200)


def register_quota_routes(
    router: Router, registry: ProviderRegistry, kind: QuotaKind, versions: tuple[str, ...]
) -> None:
    api = QuotaApi(kind)
    t = registry.add_type(kind.admin_namespace, "locations/quotas", versions, always_registered=True).full_name
    base = "/subscriptions/{subscriptionId}/providers/" + kind.admin_namespace + "/locations/{location}/quotas"
    router.add("GET", base, api.list, resource_type=t, access=Access.OPERATOR)
    for method, fn in (("GET", api.get), ("PUT", api.put), ("DELETE", api.delete)):
        router.add(method, base + "/{quotaName}", fn, resource_type=t, access=Access.OPERATOR)


def usages_body(ctx: RequestContext, kind: QuotaKind, path: str) -> dict[str, Any]:
    """``{"value": [{id, name{value, localizedValue}, currentValue, limit, unit}]}`` as Azure's usage APIs."""
    sub = ctx.params["subscriptionId"]
    items = []
    for lim in quota_report(ctx.db, sub, kind.admin_namespace):
        f = lim.field
        if f.usage_name is None:
            continue
        items.append(
            {
                "id": f"{path}/{f.usage_name}",
                "name": {"value": f.usage_name, "localizedValue": f.label},
                "currentValue": lim.used,
                "limit": lim.limit,
                "unit": f.unit,
            }
        )
    return {"value": items}


def register_usage_route(
    router: Router, registry: ProviderRegistry, kind: QuotaKind, template: str, rtype: str, versions: tuple[str, ...]
) -> None:
    """A tenant's usage route (``template`` under ``/subscriptions/{subscriptionId}/providers/{service}/``)."""
    t = registry.add_type(kind.service, rtype, versions).full_name
    path = "/subscriptions/{subscriptionId}/providers/" + kind.service + "/" + template

    def usages(ctx: RequestContext) -> Response:
        return json_response(usages_body(ctx, kind, ctx.path))

    router.add("GET", path, usages, resource_type=t)
