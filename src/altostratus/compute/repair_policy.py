"""``automaticRepairsPolicy`` of a scale set: validated as Azure does, with an operator-lowered minimum.

Azure accepts ``enabled`` (bool), ``gracePeriod`` (ISO 8601 duration, PT10M to PT90M, default PT30M) and
``repairAction`` (Replace, Restart, Reimage; default Replace). Here the only action is Replace, done in place
(compute/repairs.py). The operator may lower the minimum grace period (``alto up --repair-min-grace-seconds``)
so that drills and tests need not wait ten minutes; tenants keep Azure's rule otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from altostratus.arm.errors import invalid_parameter

AZURE_MIN_GRACE_SECONDS = 600
MAX_GRACE_SECONDS = 5400
DEFAULT_GRACE_SECONDS = 1800
MAX_FAULT_DOMAINS = 5
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
TARGET = "automaticRepairsPolicy"


def seconds(duration: str) -> float | None:
    """Seconds of an ISO 8601 duration (days, hours, minutes, seconds), or None if it is not one."""
    m = _DURATION.match(duration)
    if not m or duration.upper() in ("P", "PT") or duration.upper().endswith("T"):
        return None
    days, hours, minutes, secs = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + secs


def grace_seconds(model: dict[str, Any]) -> float | None:
    """The grace period of an enabled policy (None when repairs are off)."""
    policy = model.get(TARGET)
    if not isinstance(policy, dict) or policy.get("enabled") is not True:
        return None
    period = policy.get("gracePeriod")
    value = seconds(period) if isinstance(period, str) else None
    return DEFAULT_GRACE_SECONDS if value is None else value


def validate(properties: dict[str, Any], min_grace_seconds: float = AZURE_MIN_GRACE_SECONDS) -> None:
    count = properties.get("platformFaultDomainCount")
    if count is not None and (
        not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_FAULT_DOMAINS
    ):
        raise invalid_parameter(
            f"'platformFaultDomainCount' must be an integer from 1 to {MAX_FAULT_DOMAINS}, got {count!r}.",
            "platformFaultDomainCount",
        )
    policy = properties.get(TARGET)
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise invalid_parameter("'automaticRepairsPolicy' must be an object.", TARGET)
    enabled = policy.get("enabled", False)
    if not isinstance(enabled, bool):
        raise invalid_parameter("'automaticRepairsPolicy.enabled' must be true or false.", f"{TARGET}.enabled")
    action = policy.get("repairAction", "Replace")
    if not isinstance(action, str) or action.lower() != "replace":
        raise invalid_parameter(
            f"The repair action '{action}' is not supported here; use 'Replace' (the instance is recreated on a "
            "healthy host).",
            f"{TARGET}.repairAction",
        )
    period = policy.get("gracePeriod")
    if period is None:
        return
    value = seconds(period) if isinstance(period, str) else None
    if value is None:
        raise invalid_parameter(
            f"The grace period '{period}' is not an ISO 8601 duration such as 'PT30M'.", f"{TARGET}.gracePeriod"
        )
    if not min_grace_seconds <= value <= MAX_GRACE_SECONDS:
        low = f"PT{int(min_grace_seconds // 60)}M" if min_grace_seconds % 60 == 0 else f"PT{min_grace_seconds:g}S"
        raise invalid_parameter(
            f"The grace period '{period}' must be between {low} and PT90M.", f"{TARGET}.gracePeriod"
        )
