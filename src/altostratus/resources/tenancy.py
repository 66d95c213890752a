"""What a subscription may use: its offer's base plans and its add-on plans, their services and quotas.

Azure Stack Hub sells **offers** made of **plans**; a plan grants services (resource providers), each with a
quota. A subscription gets its offer's base plans when it is created and may acquire add-on plans later; its
effective quota for a service is the sum of the quotas of every plan it holds (an add-on acquired twice counts
twice). A quota named after a subscription id, where an operator made one, replaces the sum for that subscription
(the compute quotas worked that way before plans existed, and operators rely on it).

Each provider describes its quota type here as a :class:`QuotaKind` (the fields, their defaults, how a named
quota is read and what counts as usage), registered when its routes are; this module knows no provider. The
question every caller asks is :func:`quota_report` (limit, usage and the plans granting it, per quota field: the
usage APIs answer from it) and :func:`check` (refuse, before anything is recorded, what would exceed it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.store.models import (
    AcquiredPlan,
    Offer,
    OfferPlan,
    Plan,
    ProviderRegistration,
    Resource,
    ResourceGroup,
    Subscription,
)

DEFAULT_OFFER = "default-offer"  # created by migration 0009, with the default plan
DEFAULT_PLAN = "default-plan"
DEFAULT_QUOTA = "Default Quota"
OFFER_PREFIX = "/delegatedProviders/default/offers/"  # how Azure Stack names an offer to tenants


@dataclass(frozen=True)
class QuotaField:
    """One limit of a quota: its name in the quota resource, a label for messages, Azure Stack's default, and
    (for limits on a number of resources) the resource type whose count in the subscription is its usage."""

    name: str
    label: str
    default: int
    counts: str | None = None  # e.g. "Microsoft.Network/publicIPAddresses"
    usage_name: str | None = None  # the name the usage APIs report it by, e.g. "PublicIPAddresses"
    unit: str = "Count"


@dataclass(frozen=True)
class QuotaKind:
    """A service's quota type, as its ``*.Admin`` quota API defines it."""

    admin_namespace: str  # "Microsoft.Compute.Admin"
    service: str  # "Microsoft.Compute": what a plan with such a quota grants
    fields: tuple[QuotaField, ...]
    # A named quota's limits (defaults filled in), or None when no quota of that name exists.
    load: Callable[[Session, str], dict[str, int] | None]
    # Usage the generic resource counts cannot see (compute's instances and cores); per field name.
    usage: Callable[[Session, str], dict[str, int]] | None = None
    error_code: str = "QuotaExceeded"

    @property
    def defaults(self) -> dict[str, int]:
        return {f.name: f.default for f in self.fields}


KINDS: dict[str, QuotaKind] = {}


def register_kind(kind: QuotaKind) -> None:
    """Called by each provider's ``register_routes`` (idempotent: every server of a process registers the same)."""
    KINDS[kind.admin_namespace.lower()] = kind


def kind_of(admin_namespace: str) -> QuotaKind | None:
    return KINDS.get(admin_namespace.lower())


def kind_for_service(namespace: str) -> QuotaKind | None:
    low = namespace.lower()
    return next((k for k in KINDS.values() if k.service.lower() == low), None)


# --- offers, plans and a subscription's holdings -------------------------------------------------------------


def offer_key(offer_id: str) -> str:
    """An offer's key from any of its names: ``/delegatedProviders/default/offers/x``, an admin resource id
    ``.../Microsoft.Subscriptions.Admin/offers/x``, or ``x``."""
    return offer_id.rstrip("/").rsplit("/", 1)[-1].lower()


def offer_of(db: Session, sub: Subscription) -> Offer | None:
    return db.get(Offer, offer_key(sub.offer_id or DEFAULT_OFFER))


def tenant_offer_id(name: str) -> str:
    return OFFER_PREFIX + name


@dataclass
class Holding:
    plan: Plan
    link: str  # "Base" | "Addon"


def holdings(db: Session, subscription_id: str) -> list[Holding]:
    """The plans a subscription holds: its offer's base plans, then each add-on acquisition (in order)."""
    sub = db.get(Subscription, subscription_id.lower())
    if sub is None:
        return []
    key = offer_key(sub.offer_id or DEFAULT_OFFER)
    base = db.scalars(
        select(Plan)
        .join(OfferPlan, OfferPlan.plan_key == Plan.name_key)
        .where(OfferPlan.offer_key == key, OfferPlan.link_type == "Base")
        .order_by(Plan.name_key)
    )
    addons = db.scalars(
        select(Plan)
        .join(AcquiredPlan, AcquiredPlan.plan_key == Plan.name_key)
        .where(AcquiredPlan.subscription_id == sub.subscription_id)
        .order_by(AcquiredPlan.acquired_at, AcquiredPlan.acquisition_id)
    )
    return [Holding(p, "Base") for p in base] + [Holding(p, "Addon") for p in addons]


def plan_services(plan: Plan) -> list[str]:
    """The service namespaces a plan grants (canonical casing), from its quotas' admin namespaces."""
    out: list[str] = []
    for q in plan.quotas:
        kind = kind_of(q["namespace"])
        service = kind.service if kind else q["namespace"].removesuffix(".Admin")
        if service not in out:
            out.append(service)
    return out


def services_of(db: Session, subscription_id: str) -> set[str]:
    """Lower-cased service namespaces the subscription's plans grant."""
    return {s.lower() for h in holdings(db, subscription_id) for s in plan_services(h.plan)}


def grants(db: Session, subscription_id: str, namespace: str) -> bool:
    """Whether the subscription may use ``namespace``: services with a quota type must come from a plan; the
    others (Microsoft.Resources, Microsoft.Insights, ...) are every subscription's."""
    if kind_for_service(namespace) is None:
        return True
    return namespace.lower() in services_of(db, subscription_id)


def not_in_plans(db: Session, subscription_id: str, namespace: str) -> ArmError:
    """The clear refusal of a service outside the subscription's plans (registering it, or creating in it)."""
    sub = db.get(Subscription, subscription_id.lower())
    offer = offer_key(sub.offer_id or DEFAULT_OFFER) if sub else "?"
    return ArmError(
        409,
        "OperationNotAllowed",
        f"The subscription '{subscription_id}' cannot use the resource provider '{namespace}': no plan of its "
        f"offer '{offer}' or its add-on plans includes that service. Ask the operator for an offer or an add-on "
        "plan that does.",
    )


def register_services(db: Session, subscription_id: str, services: list[str]) -> None:
    """Registers the subscription to ``services`` (the plans' providers), so a first create needs no manual
    registration: the SDK cannot register by itself on a long-running call."""
    sub_key = subscription_id.lower()
    for service in services:
        row = db.get(ProviderRegistration, (sub_key, service.lower()))
        if row is None:
            db.add(ProviderRegistration(subscription_id=sub_key, namespace_key=service.lower(), state="Registered"))
        else:
            row.state = "Registered"
    db.flush()


def register_plan_services(db: Session, subscription_id: str) -> None:
    services: list[str] = []
    for h in holdings(db, subscription_id):
        services += [s for s in plan_services(h.plan) if s not in services]
    register_services(db, subscription_id, services)


# --- quotas ---------------------------------------------------------------------------------------------------


@dataclass
class Limit:
    """One quota field of a subscription: the effective limit, the usage, and who grants the limit."""

    field: QuotaField
    limit: int
    used: int
    grants: list[tuple[str, str, int]] = dataclass_field(
        default_factory=list
    )  # (plan or quota name, link, contribution)


def _counted(db: Session, subscription_id: str, rtype: str) -> int:
    return (
        db.scalar(
            select(func.count(Resource.id))
            .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
            .where(ResourceGroup.subscription_id == subscription_id.lower(), Resource.type_key == rtype.lower())
        )
        or 0
    )


def quota_report(db: Session, subscription_id: str, admin_namespace: str) -> list[Limit]:
    """Limit, current usage and granting plans per quota field of one service for a subscription.

    This is the function the usage APIs answer from (``Microsoft.Network/locations/{l}/usages``, ...)."""
    kind = kind_of(admin_namespace)
    if kind is None:
        raise KeyError(admin_namespace)
    limits = {f.name: 0 for f in kind.fields}
    granted: dict[str, list[tuple[str, str, int]]] = {f.name: [] for f in kind.fields}
    override = kind.load(db, subscription_id.lower())
    if override is not None:
        for f in kind.fields:
            limits[f.name] = override.get(f.name, f.default)
            granted[f.name].append((f"quota '{subscription_id}'", "Override", limits[f.name]))
    else:
        for h in holdings(db, subscription_id):
            for q in h.plan.quotas:
                if q["namespace"].lower() != kind.admin_namespace.lower():
                    continue
                values = kind.load(db, q["name"]) or {}
                for f in kind.fields:
                    v = int(values.get(f.name, 0))
                    limits[f.name] += v
                    granted[f.name].append((h.plan.name, h.link, v))
    used = dict(kind.usage(db, subscription_id)) if kind.usage else {}
    for f in kind.fields:
        if f.counts and f.name not in used:
            used[f.name] = _counted(db, subscription_id, f.counts)
    return [Limit(f, limits[f.name], used.get(f.name, 0), granted[f.name]) for f in kind.fields]


def _granted_by(limit: Limit, service: str) -> str:
    if not limit.grants:
        return f"No plan of the subscription grants {service}."
    parts = [
        name if link == "Override" else f"{'add-on ' if link == 'Addon' else ''}plan '{name}' ({value})"
        for name, link, value in limit.grants
    ]
    return "Granted by " + ", ".join(parts) + "."


def check(db: Session, subscription_id: str, admin_namespace: str, wanted: dict[str, int]) -> None:
    """Refuse, before anything is recorded, what would take a quota field past the subscription's limit: 409
    with the kind's code, the limit, the usage, what was asked and the plans granting the limit."""
    if not any(v > 0 for v in wanted.values()):
        return
    kind = kind_of(admin_namespace)
    if kind is None:
        return
    report = {lim.field.name: lim for lim in quota_report(db, subscription_id, admin_namespace)}
    for name, extra in wanted.items():
        lim = report.get(name)
        if lim is None or extra <= 0 or lim.used + extra <= lim.limit:
            continue
        raise ArmError(
            409,
            kind.error_code,
            f"Operation results in exceeding quota limits of {lim.field.label}. Maximum allowed: {lim.limit}, "
            f"Current in use: {lim.used}, Additional requested: {extra}. {_granted_by(lim, kind.service)} Ask the "
            "operator for an add-on plan or a higher quota.",
        )


def check_create(db: Session, subscription_id: str, resource_type: str) -> None:
    """A new resource of ``resource_type`` counts against the quota field that counts that type, if any."""
    low = resource_type.lower()
    for kind in KINDS.values():
        for f in kind.fields:
            if f.counts and f.counts.lower() == low:
                check(db, subscription_id, kind.admin_namespace, {f.name: 1})


def plans_using_quota(db: Session, admin_namespace: str, name: str) -> list[str]:
    """Plans that name a quota (a quota in use cannot be deleted)."""
    out = []
    for plan in db.scalars(select(Plan).order_by(Plan.name_key)):
        if any(
            q["namespace"].lower() == admin_namespace.lower() and q["name"].lower() == name.lower() for q in plan.quotas
        ):
            out.append(plan.name)
    return out
