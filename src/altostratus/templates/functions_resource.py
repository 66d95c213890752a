"""Resource functions (docs: template-functions-resource): the resource-id family, ``reference``/``references``,
``list*``, ``providers``, ``pickZones`` and ``resourceInfo``.

Ids are pure string building and are computed here, including the forms real templates use (types with a trailing
slash, cross-resource-group and cross-subscription ids, child types with several names). Everything that reads live
state goes through a callback on the context: the deployment engine decides what a name means, when a reference is
ready and which provider serves a ``listKeys``. Without a callback the function fails as ARM does where such calls
are not allowed.
"""

from __future__ import annotations

from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import TemplateError, function_error
from altostratus.templates.registry import builtin, type_error, want_int, want_str


def _not_available(function: str) -> TemplateError:
    return TemplateError(
        f"The template function '{function}' is not expected at this location. "
        "Please see https://aka.ms/arm-template-expressions for usage details."
    )


def _type_segments(function: str, resource_type: Any, position: int) -> list[str]:
    text = want_str(function, resource_type, position)
    segments = [s for s in text.split("/") if s]
    if len(segments) < 2:
        raise function_error(
            function,
            f"The resource type '{text}' is not valid: it must be a fully qualified type such as "
            "'Microsoft.Storage/storageAccounts'.",
        )
    return segments


def _provider_path(function: str, resource_type: Any, names: tuple[Any, ...], first_name: int) -> str:
    """``providers/{ns}/{type1}/{name1}/{type2}/{name2}...`` from a type and its name arguments."""
    segments = _type_segments(function, resource_type, first_name - 1)
    name_segments: list[str] = []
    for offset, name in enumerate(names):
        if not isinstance(name, str):
            raise type_error(function, name, "String", first_name + offset)
        name_segments.extend(s for s in name.split("/") if s)
    expected = len(segments) - 1
    if len(name_segments) != expected and (expected + len(name_segments)) % 2:
        raise function_error(
            function,
            f"the type '{'/'.join(segments)}' requires '{expected}' resource name argument(s), "
            f"but {len(name_segments)} name segment(s) were provided.",
        )
    # Interleave type and name segments. Real templates sometimes fold a child's name into the type
    # ('Microsoft.Network/loadBalancers/probes/tcpProbe', lbName - Azure quickstart multi-vmss-linux-lb-zones): the
    # id is still well formed when the segments add up, so the rest is appended in order.
    parts = [segments[0]]
    types = segments[1:]
    for index in range(max(len(types), len(name_segments))):
        parts.extend(p[index] for p in (types, name_segments) if index < len(p))
    return "providers/" + "/".join(parts)


def _type_index(function: str, args: tuple[Any, ...], max_leading: int) -> int:
    """Index of the resource type argument: the first one containing '/' (scope arguments never do)."""
    for index, value in enumerate(args):
        if isinstance(value, str) and "/" in value:
            if index > max_leading:
                break
            return index
    raise function_error(
        function,
        "The resource type argument is missing or not fully qualified (for example "
        "'Microsoft.Storage/storageAccounts').",
    )


@builtin("resourceId", 2, None)
def resource_id(ctx: EvaluationContext, *args: Any) -> str:
    """``resourceId([subscriptionId], [resourceGroupName], type, name1, ...)``."""
    at = _type_index("resourceId", args, 2)
    path = _provider_path("resourceId", args[at], args[at + 1 :], at + 1)
    scope = [want_str("resourceId", a, i) for i, a in enumerate(args[:at])]
    if len(scope) == 2:
        return f"/subscriptions/{scope[0]}/resourceGroups/{scope[1]}/{path}"
    if len(scope) == 1:
        return f"/subscriptions/{ctx.subscription_id}/resourceGroups/{scope[0]}/{path}"
    if ctx.resource_group is not None:
        return f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group}/{path}"
    if ctx.management_group is not None:
        return f"/{path}"
    return f"/subscriptions/{ctx.subscription_id}/{path}"


@builtin("subscriptionResourceId", 2, None)
def subscription_resource_id(ctx: EvaluationContext, *args: Any) -> str:
    at = _type_index("subscriptionResourceId", args, 1)
    path = _provider_path("subscriptionResourceId", args[at], args[at + 1 :], at + 1)
    subscription = want_str("subscriptionResourceId", args[0], 0) if at == 1 else ctx.subscription_id
    return f"/subscriptions/{subscription}/{path}"


@builtin("tenantResourceId", 2, None)
def tenant_resource_id(ctx: EvaluationContext, resource_type: Any, *names: Any) -> str:
    return "/" + _provider_path("tenantResourceId", resource_type, names, 1)


@builtin("managementGroupResourceId", 2, None)
def management_group_resource_id(ctx: EvaluationContext, *args: Any) -> str:
    at = _type_index("managementGroupResourceId", args, 1)
    path = _provider_path("managementGroupResourceId", args[at], args[at + 1 :], at + 1)
    if at == 1:
        group = want_str("managementGroupResourceId", args[0], 0)
    elif ctx.management_group is not None:
        group = ctx.management_group
    else:
        raise function_error(
            "managementGroupResourceId",
            "The deployment is not at management group scope; pass the management group name as first argument.",
        )
    return f"/providers/Microsoft.Management/managementGroups/{group}/{path}"


@builtin("extensionResourceId", 3, None)
def extension_resource_id(ctx: EvaluationContext, base_id: Any, resource_type: Any, *names: Any) -> str:
    base = want_str("extensionResourceId", base_id, 0).rstrip("/")
    if not base.startswith("/"):
        raise function_error("extensionResourceId", f"The base resource id '{base}' is not a fully qualified id.")
    return f"{base}/" + _provider_path("extensionResourceId", resource_type, names, 2)


def _full_flag(function: str, value: Any, position: int) -> bool:
    text = want_str(function, value, position)
    if text.casefold() not in ("full", "properties"):
        raise function_error(function, f"The parameter '{text}' is not valid; it must be 'Full' or 'Properties'.")
    return text.casefold() == "full"


@builtin("reference", 1, 3)
def reference(ctx: EvaluationContext, target: Any, api_version: Any = None, full: Any = None) -> Any:
    name = want_str("reference", target, 0)
    version = None if api_version is None else want_str("reference", api_version, 1)
    is_full = full is not None and _full_flag("reference", full, 2)
    if ctx.reference is None:
        raise _not_available("reference")
    return ctx.reference(name, version, is_full)


@builtin("references", 1, 2)
def references(ctx: EvaluationContext, symbol: Any, full: Any = None) -> list[Any]:
    name = want_str("references", symbol, 0)
    is_full = full is not None and _full_flag("references", full, 1)
    if ctx.references is None:
        raise _not_available("references")
    return ctx.references(name, is_full)


@builtin("resourceInfo", 1)
def resource_info(ctx: EvaluationContext, symbol: Any) -> Any:
    name = want_str("resourceInfo", symbol)
    if ctx.resource_info is None:
        raise _not_available("resourceInfo")
    return ctx.resource_info(name)


def list_action(ctx: EvaluationContext, function: str, *args: Any) -> Any:
    """Any ``list*`` function: ``listKeys(resourceNameOrId, apiVersion, [functionValues])``."""
    if not 2 <= len(args) <= 3:
        raise function_error(
            function, f"function requires between 2 and 3 argument(s) while {len(args)} were provided."
        )
    target = want_str(function, args[0], 0)
    version = None if args[1] is None else want_str(function, args[1], 1)
    values = args[2] if len(args) == 3 else None
    if ctx.list_action is None:
        raise _not_available(function)
    return ctx.list_action(function, target, version, values)


@builtin("providers", 1, 2)
def providers(ctx: EvaluationContext, namespace: Any, resource_type: Any = None) -> Any:
    ns = want_str("providers", namespace, 0)
    rtype = None if resource_type is None else want_str("providers", resource_type, 1)
    if ctx.providers is None:
        raise _not_available("providers")
    return ctx.providers(ns, rtype)


@builtin("pickZones", 3, 5)
def pick_zones(
    ctx: EvaluationContext, namespace: Any, resource_type: Any, location: Any, count: Any = 1, offset: Any = 0
) -> list[str]:
    ns = want_str("pickZones", namespace, 0)
    rtype = want_str("pickZones", resource_type, 1)
    where = want_str("pickZones", location, 2)
    number = want_int("pickZones", count, 3)
    start = want_int("pickZones", offset, 4)
    if number < 1 or start < 0:
        raise function_error("pickZones", "The number of zones must be positive and the offset non-negative.")
    zones = ctx.zones(ns, rtype, where) if ctx.zones is not None else []
    if not zones:
        return []
    if start + number > len(zones):
        raise function_error(
            "pickZones",
            f"The offset '{start}' plus the number of zones '{number}' exceeds the {len(zones)} supported zone(s).",
        )
    return list(zones[start : start + number])
