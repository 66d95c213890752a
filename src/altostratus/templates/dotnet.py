""".NET formatting rules that template functions inherit from the real engine.

``format()`` is ``String.Format`` (``{0}``, ``{0,10}``, ``{2:N0}``, ``{{`` escapes), ``utcNow()`` and
``dateTimeAdd()`` take .NET standard (``d``, ``u``, ``o``...) or custom (``yyyyMMddTHHmmssZ``) date format strings,
and numbers format with the invariant culture. Templates depend on these (storage names from ``utcNow('yyMMdd')``,
zero-padded indexes from ``format('{0:D3}', copyIndex())``), so they are implemented rather than approximated with
Python's own mini-languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from altostratus.templates.errors import TemplateError
from altostratus.templates.values import format_float, is_int, is_number

# ------------------------------------------------------------------------------------------- composite format

_FORMAT_ERROR = "Input string was not in a correct format."


def composite_format(fmt: str, args: list[Any], render: Callable[[Any, str], str]) -> str:
    """``String.Format(fmt, args)``; ``render(value, spec)`` renders one argument with its format spec."""
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == "{":
            if i + 1 < n and fmt[i + 1] == "{":
                out.append("{")
                i += 2
                continue
            end = fmt.find("}", i)
            if end < 0:
                raise TemplateError(_FORMAT_ERROR)
            item = fmt[i + 1 : end]
            # A '}}' inside the format spec is an escaped brace.
            while end + 1 < n and fmt[end + 1] == "}" and ":" in item:
                nxt = fmt.find("}", end + 2)
                if nxt < 0:
                    break
                item = item + "}" + fmt[end + 2 : nxt]
                end = nxt
            match = re.fullmatch(r"\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::(.*))?", item, re.S)
            if match is None:
                raise TemplateError(_FORMAT_ERROR)
            index = int(match.group(1))
            if index >= len(args):
                raise TemplateError(
                    "Index (zero based) must be greater than or equal to zero and less than the size of the argument "
                    "list."
                )
            text = render(args[index], match.group(3) or "")
            if match.group(2):
                width = int(match.group(2))
                text = text.rjust(width) if width > 0 else text.ljust(-width)
            out.append(text)
            i = end + 1
        elif ch == "}":
            if i + 1 < n and fmt[i + 1] == "}":
                out.append("}")
                i += 2
                continue
            raise TemplateError(_FORMAT_ERROR)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------- numeric format


def _group(digits: str) -> str:
    parts = []
    while len(digits) > 3:
        parts.append(digits[-3:])
        digits = digits[:-3]
    parts.append(digits)
    return ",".join(reversed(parts))


def _fixed(value: int | float, decimals: int) -> str:
    quantum = Decimal(1).scaleb(-decimals)
    rounded = Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:f}"


def format_number(value: int | float, spec: str) -> str:
    """Invariant-culture .NET numeric formatting (standard specifiers and simple custom patterns)."""
    if not spec:
        return str(value) if is_int(value) else format_float(float(value))
    match = re.fullmatch(r"([CcDdEeFfGgNnPpXxRr])(\d{0,2})", spec)
    if match is None:
        return _custom_number(value, spec)
    kind, digits = match.group(1), match.group(2)
    precision = int(digits) if digits else None
    negative = value < 0
    magnitude = -value if negative else value
    sign = "-" if negative else ""
    upper = kind.upper()
    if upper == "D":
        if not is_int(value):
            raise TemplateError("Format specifier was invalid.")
        return sign + str(magnitude).zfill(precision or 0)
    if upper == "X":
        if not is_int(value):
            raise TemplateError("Format specifier was invalid.")
        text = format(int(value) & 0xFFFFFFFFFFFFFFFF, "x")
        text = text.zfill(precision or 0)
        return text.upper() if kind == "X" else text
    if upper in ("F", "N", "C", "P"):
        places = precision if precision is not None else 2
        if upper == "P":
            magnitude = magnitude * 100
        text = _fixed(magnitude, places)
        if upper in ("N", "C", "P"):
            whole, _, frac = text.partition(".")
            text = _group(whole) + ("." + frac if frac else "")
        if upper == "C":
            return ("(" if negative else "") + "\u00a4" + text + (")" if negative else "")
        if upper == "P":
            return sign + text + " %"
        return sign + text
    if upper == "E":
        places = 6 if precision is None else precision
        text = f"{float(magnitude):.{places}e}"
        mantissa, exponent = text.split("e")
        exp_sign = "-" if exponent.startswith("-") else "+"
        return sign + mantissa + kind + exp_sign + exponent.lstrip("+-").zfill(3)
    # G and R: shortest representation.
    return str(value) if is_int(value) else format_float(float(value))


def _custom_number(value: int | float, spec: str) -> str:
    """Custom numeric patterns built from ``0``, ``#``, ``,`` and ``.`` (e.g. ``000``, ``#,##0.00``)."""
    if not re.fullmatch(r"[0#,.]+", spec):
        # Anything fancier (sections, exponents, literals) is rare in templates: render the plain value.
        return str(value) if is_int(value) else format_float(float(value))
    integer_part, _, fraction_part = spec.partition(".")
    grouping = "," in integer_part
    min_int = integer_part.count("0")
    max_frac = len(fraction_part)
    min_frac = fraction_part.rstrip("#").count("0")
    negative = value < 0
    text = _fixed(-value if negative else value, max_frac)
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(min_frac, "0") if frac else ""
    whole = whole.lstrip("0").zfill(min_int) if min_int else whole.lstrip("0")
    if grouping and whole:
        whole = _group(whole)
    result = whole + ("." + frac if frac else "")
    return ("-" if negative and result.strip("0.,") else "") + (result or "0")


def render_format_argument(value: Any, spec: str) -> str:
    """How ``format()`` renders one argument (numbers honour the spec; bools ``True``; containers as literals)."""
    from altostratus.templates.values import to_literal

    if isinstance(value, bool):
        return "True" if value else "False"
    if is_number(value):
        return format_number(value, spec.strip())
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return to_literal(value)


# ------------------------------------------------------------------------------------------------ date & time

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
_MONTHS += ["November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_STANDARD_DATE_FORMATS = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}

_DATE_TOKEN = re.compile(r"d{1,4}|f{1,7}|F{1,7}|g{1,2}|h{1,2}|H{1,2}|K|m{1,2}|M{1,4}|s{1,2}|t{1,2}|y{1,5}|z{1,3}")


def format_datetime(value: datetime, fmt: str) -> str:
    """Format a datetime with a .NET standard or custom format string (invariant culture)."""
    if len(fmt) == 1:
        if fmt not in _STANDARD_DATE_FORMATS:
            raise TemplateError(f"The date format '{fmt}' is not valid.")
        if fmt in "uUrR":
            value = value.astimezone(UTC) if value.tzinfo else value
        fmt = _STANDARD_DATE_FORMATS[fmt]
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in "'\"":
            end = fmt.find(ch, i + 1)
            if end < 0:
                raise TemplateError(f"The date format '{fmt}' has an unterminated quoted string.")
            out.append(fmt[i + 1 : end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < n:
            out.append(fmt[i + 1])
            i += 2
            continue
        if ch == "%" and i + 1 < n:
            i += 1
            continue
        match = _DATE_TOKEN.match(fmt, i)
        if match is None:
            out.append(ch)
            i += 1
            continue
        out.append(_date_token(value, match.group(0)))
        i = match.end()
    return "".join(out)


def _date_token(value: datetime, token: str) -> str:
    kind, count = token[0], len(token)
    if kind == "d":
        if count <= 2:
            return str(value.day).zfill(count)
        name = _DAYS[value.weekday()]
        return name[:3] if count == 3 else name
    if kind in "fF":
        digits = f"{value.microsecond:06d}0"[:count]
        return digits.rstrip("0") if kind == "F" else digits
    if kind == "g":
        return "A.D."
    if kind == "h":
        return str(value.hour % 12 or 12).zfill(count)
    if kind == "H":
        return str(value.hour).zfill(count)
    if kind == "K":
        return _offset(value, "K")
    if kind == "m":
        return str(value.minute).zfill(count)
    if kind == "M":
        if count <= 2:
            return str(value.month).zfill(count)
        name = _MONTHS[value.month - 1]
        return name[:3] if count == 3 else name
    if kind == "s":
        return str(value.second).zfill(count)
    if kind == "t":
        marker = "AM" if value.hour < 12 else "PM"
        return marker[:count]
    if kind == "y":
        if count == 1:
            return str(value.year % 100)
        if count == 2:
            return str(value.year % 100).zfill(2)
        return str(value.year).zfill(count)
    return _offset(value, token)


def _offset(value: datetime, token: str) -> str:
    offset = value.utcoffset()
    if offset is None:
        return "" if token == "K" else "+00:00"[: {1: 3, 2: 3, 3: 6}[len(token)]]
    if token == "K" and offset == timedelta(0):
        return "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    if token == "z":
        return f"{sign}{hours}"
    if token == "zz":
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}:{mins:02d}"


_ISO_DATETIME = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*",
    re.I,
)


def parse_datetime(text: str) -> datetime:
    """Parse the ISO 8601 timestamps templates use (``2020-04-07 14:53:14Z``, ``2023-01-01T00:00:00.123+02:00``).

    Values without a zone are taken as UTC, as ARM does for ``utcNow()`` outputs fed back into date functions.
    """
    match = _ISO_DATETIME.fullmatch(text)
    if match is None:
        raise TemplateError(f"The string '{text}' is not a valid ISO 8601 date time.")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(7, "0")[:6])
    try:
        result = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    except ValueError as exc:
        raise TemplateError(f"The string '{text}' is not a valid ISO 8601 date time: {exc}.") from None
    if zone is None or zone.upper() == "Z":
        return result.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return result.replace(tzinfo=timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))))


_ISO_DURATION = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.I
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration; like ARM, a year is 365 days and a month 30 days (no calendar arithmetic)."""
    match = _ISO_DURATION.fullmatch(text.strip())
    if match is None or text.strip().upper() in ("P", "-P", "PT", "-PT") or text.strip().upper().endswith("T"):
        raise TemplateError(f"The string '{text}' is not a valid ISO 8601 duration.")
    negative, years, months, weeks, days, hours, minutes, seconds = match.groups()
    delta = timedelta(
        days=int(years or 0) * 365 + int(months or 0) * 30 + int(weeks or 0) * 7 + int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float(seconds or 0),
    )
    return -delta if negative else delta


def iso_format(value: datetime) -> str:
    """The round-trip form ARM returns by default: ``2024-01-01T00:00:00Z`` (fractions only when present)."""
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None or offset == timedelta(0):
        return text + "Z"
    return text + _offset(value, "zzz")
