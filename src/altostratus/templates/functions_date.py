"""Date functions (docs: template-functions-date).

``utcNow()`` reads the clock through the context (``ctx.now``) so tests and redeployments can pin it; the phase
check in the evaluator keeps it (and ``newGuid()``) to parameter defaults, as ARM requires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.dotnet import format_datetime, iso_format, parse_datetime, parse_duration
from altostratus.templates.errors import TemplateError, function_error
from altostratus.templates.registry import builtin, want_int, want_str

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _wrap(function: str, exc: TemplateError) -> TemplateError:
    return function_error(function, exc.message)


@builtin("utcNow", 0, 1)
def utc_now(ctx: EvaluationContext, fmt: Any = "yyyyMMddTHHmmssZ") -> str:
    try:
        return format_datetime(ctx.now().astimezone(UTC), want_str("utcNow", fmt))
    except TemplateError as exc:
        raise _wrap("utcNow", exc) from None


@builtin("dateTimeAdd", 2, 3)
def date_time_add(ctx: EvaluationContext, base: Any, duration: Any, fmt: Any = None) -> str:
    try:
        start = parse_datetime(want_str("dateTimeAdd", base, 0))
        result = start + parse_duration(want_str("dateTimeAdd", duration, 1))
        if fmt is None:
            return iso_format(result)
        return format_datetime(result, want_str("dateTimeAdd", fmt, 2))
    except TemplateError as exc:
        raise _wrap("dateTimeAdd", exc) from None
    except OverflowError:
        raise function_error("dateTimeAdd", "The result is outside the supported date range.") from None


@builtin("dateTimeFromEpoch", 1)
def date_time_from_epoch(ctx: EvaluationContext, epoch: Any) -> str:
    seconds = want_int("dateTimeFromEpoch", epoch)
    try:
        return iso_format(_EPOCH + timedelta(seconds=seconds))
    except OverflowError:
        raise function_error("dateTimeFromEpoch", f"The epoch value '{seconds}' is out of range.") from None


@builtin("dateTimeToEpoch", 1)
def date_time_to_epoch(ctx: EvaluationContext, value: Any) -> int:
    try:
        moment = parse_datetime(want_str("dateTimeToEpoch", value))
    except TemplateError as exc:
        raise _wrap("dateTimeToEpoch", exc) from None
    return int((moment - _EPOCH).total_seconds() // 1)
