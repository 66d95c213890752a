"""The resource-provider registry: which namespaces and resource types exist, and their api-versions.

Providers extend it at start-up; the providers endpoint (``/subscriptions/{s}/providers``), api-version
checks and template functions such as ``providers()`` all read from this one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Starts (or continues) deleting one resource of the generic resources table and whatever the owning
# provider keeps beside it; called by resource-group deletion, repeatedly until it returns True (gone).
# Must be idempotent. Arguments: Database, resource row id.
Deleter = Callable[[Any, int], bool]


@dataclass(frozen=True)
class Mover:
    """How a provider that keeps state beside the generic resources row moves it to another resource group.

    ``documents(session, row)`` returns the JSON the provider keeps for the resource (where references to other
    resources' ids live). ``move(session, row, group, rewrite)``, called while ``row`` is still in its old group,
    points that state at ``group`` (the target resource-group row) and passes each document through ``rewrite``,
    which replaces moved resources' ids. Both run in the move's one transaction: a refused move leaves nothing.
    """

    documents: Callable[[Any, Any], list[Any]]
    move: Callable[[Any, Any, Any, Callable[[Any], Any]], None]


@dataclass(frozen=True)
class PreflightCheck:
    """A template resource as a provider sees it before a deployment starts (ARM's RP preflight).

    ``read(path)`` evaluates part of the resource's body, e.g. ``("properties", "virtualMachineProfile")``;
    it raises LookupError when the part is absent or needs a resource that is not deployed yet (``reference()``).
    """

    session: Any  # the request's database session (read what exists; never write)
    resource_id: str
    location: str
    read: Callable[[tuple[str, ...]], Any]


# Raises ArmError when the resource would certainly fail to deploy, so nothing is deployed at all.
Preflight = Callable[[PreflightCheck], None]


@dataclass
class ResourceType:
    namespace: str
    name: str  # e.g. "resourceGroups" or "virtualMachineScaleSets/virtualMachines"
    api_versions: tuple[str, ...]  # newest first
    locations: tuple[str, ...] = ()
    # ARM's own types report a bad api-version as InvalidApiVersionParameter; provider types as
    # NoRegisteredProviderFound (what Azure answers for each).
    arm_native: bool = False
    hidden: bool = False  # routing-only types (operation status) that the providers listing omits
    deleter: Deleter | None = None
    mover: Mover | None = None
    preflight: Preflight | None = None
    # What another provider adds to a GET of this type: fields derived from resources it owns (a load balancer's
    # inbound NAT rules made by scale sets' NAT pools). Called with the request's session and the rendered body.
    view: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    _lower: tuple[tuple[str, ...], frozenset[str]] | None = field(default=None, repr=False, compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def api_versions_lower(self) -> frozenset[str]:
        """For the pipeline's check, which compares without regard to case on every request."""
        cached = self._lower
        if cached is None or cached[0] is not self.api_versions:
            cached = self._lower = (self.api_versions, frozenset(v.lower() for v in self.api_versions))
        return cached[1]


@dataclass
class Namespace:
    name: str
    types: dict[str, ResourceType] = field(default_factory=dict)  # keyed by lower-case type name
    # Providers that every subscription has registered from the start (ARM's own, for example).
    always_registered: bool = False
    admin: bool = False


def sort_versions(versions: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Newest first: ``2020-06-01`` > ``2020-06-01-preview`` > ``2017-03-30``."""

    def key(v: str) -> tuple[str, int]:
        return (v[:10], 0 if "preview" in v else 1)

    return tuple(sorted(set(versions), key=key, reverse=True))


class ProviderRegistry:
    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}

    def namespace(self, name: str, *, always_registered: bool = False) -> Namespace:
        key = name.lower()
        ns = self.namespaces.get(key)
        if ns is None:
            ns = Namespace(name, always_registered=always_registered, admin=key.endswith(".admin"))
            self.namespaces[key] = ns
        ns.always_registered = ns.always_registered or always_registered
        return ns

    def add_type(
        self,
        namespace: str,
        name: str,
        api_versions: tuple[str, ...] | list[str],
        *,
        locations: tuple[str, ...] = (),
        arm_native: bool = False,
        hidden: bool = False,
        always_registered: bool = False,
    ) -> ResourceType:
        ns = self.namespace(namespace, always_registered=always_registered)
        rtype = ResourceType(ns.name, name, sort_versions(api_versions), locations, arm_native, hidden)
        ns.types[name.lower()] = rtype
        return rtype

    def get_namespace(self, name: str) -> Namespace | None:
        return self.namespaces.get(name.lower())

    def get_type(self, full_name: str) -> ResourceType | None:
        namespace, _, name = full_name.partition("/")
        ns = self.namespaces.get(namespace.lower())
        return ns.types.get(name.lower()) if ns else None
