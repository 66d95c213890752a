"""What `alto deployment group create|validate|what-if` sends: the template, the parameters and the deployment name.

The template file is read with the project's own template loader, so a UTF-8 byte-order mark, comments and trailing
commas are accepted as ARM accepts them. It travels *as text*: comments and trailing commas are blanked out in place
(newlines kept) and the text is put first in the request body, so the line numbers the server reports in an
``InvalidTemplate`` error are the lines of the user's file - the reason ``az`` sends templates as written, too.

Parameters are merged the way ``az`` merges them: ``@file.json`` (a parameters file, or a bare object of values),
inline JSON, or ``name=value`` whose value is JSON when it parses and a string otherwise; later ones win.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from altostratus.cli.linked_files import LinkedFileError, inline_relative_links
from altostratus.templates.errors import TemplateError
from altostratus.templates.loader import decode, loads, strip_comments

NAME_MAX = 64
WRAPPER_KEYS = {"value", "reference", "metadata"}


class InputError(Exception):
    """A template or parameters argument that cannot be used; the message says what to fix."""


@dataclass
class TemplateSource:
    """A template given by file (its wire text) or by URI (a ``templateLink``)."""

    text: str | None = None
    uri: str | None = None

    def properties_text(self, mode: str, parameters: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
        """The ``properties`` object as JSON text, the template first so that its lines keep their numbers."""
        rest = {"mode": mode, "parameters": parameters, **(extra or {})}
        tail = json.dumps(rest)[1:]  # '"mode": ..., ...}' - no newlines: json.dumps escapes them
        if self.text is not None:
            return '{"template": ' + self.text.rstrip() + ", " + tail
        return "{" + json.dumps({"templateLink": {"uri": self.uri}})[1:-1] + ", " + tail


def load_template(template_file: Path | None, template_uri: str | None) -> TemplateSource:
    if (template_file is None) == (template_uri is None):
        raise InputError("Give exactly one of --template-file and --template-uri.")
    if template_uri is not None:
        if not template_uri.lower().startswith(("http://", "https://")):
            raise InputError(f"--template-uri must be an http:// or https:// URL (got '{template_uri}').")
        return TemplateSource(uri=template_uri)
    assert template_file is not None
    try:
        raw = template_file.expanduser().read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the template file '{template_file}': {exc.strerror or exc}.") from None
    try:
        text = strip_comments(decode(raw))
        template = loads(text)
    except TemplateError as exc:
        raise InputError(f"'{template_file}' is not valid JSON: {exc.message}") from None
    if not isinstance(template, dict):
        raise InputError(f"'{template_file}' must contain a JSON object (a template), not {type(template).__name__}.")
    try:
        if inline_relative_links(template, template_file.expanduser().resolve().parent):
            return TemplateSource(text=json.dumps(template, indent=2))  # linked files inlined: a new document
    except LinkedFileError as exc:
        raise InputError(str(exc)) from None
    try:
        json.loads(text)  # strict: what any JSON parser on the other side accepts
    except ValueError:
        text = json.dumps(template)  # e.g. a literal newline inside a string: send the parsed form instead
    return TemplateSource(text=text)


def default_name(template_file: Path | None, template_uri: str | None) -> str:
    """``az``'s default: the template's base name without extension (made a valid deployment name)."""
    stem = template_file.stem if template_file is not None else Path(urlsplit(template_uri or "").path).stem
    name = re.sub(r"[^\w.()-]", "-", stem, flags=re.ASCII).strip("-.")[:NAME_MAX]
    return name or "deployment"


# ------------------------------------------------------------------------------------------------ parameters


def _wrapped(entry: Any) -> bool:
    if not isinstance(entry, dict) or not entry:
        return False
    keys = {k.casefold() for k in entry}
    return keys <= WRAPPER_KEYS and bool(keys & {"value", "reference"})


def values_object(doc: Any, where: str) -> dict[str, Any]:
    """``{name: {"value": v}}`` from a parameters file, its ``parameters`` part, or a bare ``{name: v}`` object."""
    if not isinstance(doc, dict):
        raise InputError(f"{where} must be a JSON object of parameters, not {type(doc).__name__}.")
    keys = {k.casefold(): k for k in doc}
    inner = doc.get(keys.get("parameters", ""))
    if isinstance(inner, dict) and ("$schema" in keys or "contentversion" in keys or len(doc) == 1):
        doc = inner
    return {name: entry if _wrapped(entry) else {"value": entry} for name, entry in doc.items()}


def _read_file(path: Path, where: str) -> Any:
    try:
        return loads(path.expanduser().read_bytes())
    except OSError as exc:
        raise InputError(f"Cannot read the parameters file '{path}': {exc.strerror or exc}.") from None
    except TemplateError as exc:
        raise InputError(f"{where} is not valid JSON: {exc.message}") from None


def parse_argument(arg: str) -> dict[str, Any]:
    """One ``--parameters`` argument as ``{name: {"value": v}}``."""
    stripped = arg.strip()
    if stripped.startswith("@"):
        path = Path(stripped[1:])
        return values_object(_read_file(path, f"'{path}'"), f"'{path}'")
    if stripped.startswith("{"):
        try:
            doc = loads(stripped)
        except TemplateError as exc:
            raise InputError(f"--parameters '{arg}' is not valid JSON: {exc.message}") from None
        return values_object(doc, "inline --parameters JSON")
    name, sep, raw = arg.partition("=")
    if sep and name.strip():
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        return {name.strip(): {"value": value}}
    if Path(stripped).expanduser().is_file():
        return values_object(_read_file(Path(stripped), f"'{stripped}'"), f"'{stripped}'")
    raise InputError(f"--parameters '{arg}': use @file.json, a JSON object, or name=value.")


def merge_parameters(args: list[str]) -> dict[str, Any]:
    """All ``--parameters`` in order; a later value replaces an earlier one of the same name (any casing)."""
    merged: dict[str, Any] = {}
    for arg in args:
        for name, entry in parse_argument(arg).items():
            for old in [k for k in merged if k.casefold() == name.casefold()]:
                del merged[old]
            merged[name] = entry
    return merged
