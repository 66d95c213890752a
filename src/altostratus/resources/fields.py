"""Field checks that the plain resource types share.

Request bodies come from SDKs and from templates; templates often carry numbers as strings (``"50000"``) and
enum values in any case, which Azure accepts, so these helpers do too and store the canonical form. Anything
else that is not what the field needs is a 400 naming the field, never a 500 further down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import invalid_parameter
from altostratus.store.models import Resource, ResourceGroup


def named_items(props: dict[str, Any], key: str, target: str) -> list[dict[str, Any]]:
    """An array of ``{"name", "properties"?}`` objects (rules, subnets, pools...), copied; [] when absent."""
    items = props.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise invalid_parameter(f"'{key}' must be an array.", target)
    seen: set[str] = set()
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise invalid_parameter(f"Every item of '{key}' must be an object with a name.", target)
        if item["name"].lower() in seen:
            raise invalid_parameter(f"'{key}' has two items named '{item['name']}'.", target)
        seen.add(item["name"].lower())
        properties = item.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise invalid_parameter(f"The properties of '{item['name']}' must be a JSON object.", target)
        out.append({**item, "properties": dict(properties or {})})
    return out


def stamp_children(items: list[dict[str, Any]], parent_id: str, segment: str) -> list[dict[str, Any]]:
    """Gives each sub-resource its id and provisioning state, as Azure returns them."""
    for item in items:
        item["id"] = f"{parent_id}/{segment}/{item['name']}"
        item.pop("etag", None)
        item.pop("type", None)
        item["properties"] = {**item.get("properties", {}), "provisioningState": "Succeeded"}
    return items


def integer(value: Any, target: str, *, default: int | None = None, minimum: int, maximum: int) -> int:
    """An integer, also from a string of digits; out of [minimum, maximum] is a 400."""
    if value is None and default is not None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if number is None or not minimum <= number <= maximum:
        raise invalid_parameter(
            f"The value '{value}' of '{target}' must be an integer from {minimum} to {maximum}.", target
        )
    return number


def boolean(value: Any, target: str, *, default: bool) -> bool:
    """A JSON boolean, also ``"true"``/``"false"`` in any case (templates write ``"primary": "true"``)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_parameter(f"The value '{value}' of '{target}' must be true or false.", target)


def choice(value: Any, allowed: tuple[str, ...], target: str, *, default: str | None = None) -> str:
    """One of ``allowed``, matched without regard to case and returned in its canonical spelling."""
    if value is None and default is not None:
        return default
    if isinstance(value, str):
        for option in allowed:
            if option.lower() == value.lower():
                return option
    raise invalid_parameter(f"The value '{value}' of '{target}' is invalid; use one of: {', '.join(allowed)}.", target)


def reference_id(value: Any, target: str) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None when the reference is absent."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"].strip():
        raise invalid_parameter(f"'{target}' must be an object with a resource 'id'.", target)
    return str(value["id"])


@dataclass(frozen=True)
class ParsedId:
    subscription: str
    group: str
    namespace: str
    type: str  # top-level type, e.g. virtualNetworks
    name: str
    children: tuple[tuple[str, str], ...]  # (segment, name) pairs below the resource

    @property
    def full_type(self) -> str:
        return f"{self.namespace}/{self.type}"


def parse_id(rid: str) -> ParsedId | None:
    """``/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}[/{child}/{name}...]``, or None."""
    parts = [p for p in rid.split("/") if p] if isinstance(rid, str) else []
    if (
        len(parts) < 8
        or len(parts) % 2
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[4].lower() != "providers"
    ):
        return None
    rest = parts[8:]
    children = tuple((rest[i], rest[i + 1]) for i in range(0, len(rest), 2))
    return ParsedId(parts[1].lower(), parts[3], parts[5], parts[6], parts[7], children)


def find_by_id(s: Session, parsed: ParsedId, *, lock: bool = False) -> Resource | None:
    """The stored row of the top-level resource an id names (any group of its subscription)."""
    query = (
        select(Resource)
        .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
        .where(
            ResourceGroup.subscription_id == parsed.subscription,
            ResourceGroup.name_key == parsed.group.lower(),
            Resource.type_key == parsed.full_type.lower(),
            Resource.name_key == parsed.name.lower(),
        )
    )
    return s.scalars(query.with_for_update() if lock else query).one_or_none()


def item_named(items: Any, name: str) -> dict[str, Any] | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == name.lower():
            return item
    return None
