"""Linked templates by file: ``templateLink.relativePath`` next to a local ``--template-file``.

ARM resolves ``relativePath`` against the URI the parent template was deployed from, so a template deployed from
a local file has nothing to resolve against. The CLI therefore reads the linked files itself and sends them
inline (``properties.template``) with ``expressionEvaluationOptions.scope = inner``, which is how a linked
template is evaluated anyway: its own parameters, variables and resource group. Links nest: a linked file's own
``relativePath`` is relative to that file. Only literal paths can be read here; an expression is left for the
server (which then reports that it has no URI to resolve against).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from altostratus.templates.errors import TemplateError
from altostratus.templates.loader import decode, loads, strip_comments
from altostratus.templates.values import find_key, get_ci

MAX_DEPTH = 10
DEPLOYMENTS = "microsoft.resources/deployments"


class LinkedFileError(Exception):
    """A linked file that cannot be read or parsed; the message names it."""


def inline_relative_links(template: dict[str, Any], folder: Path, depth: int = 0) -> bool:
    """Replace every literal ``relativePath`` link in ``template`` (in place); True when anything changed."""
    resources = get_ci(template, "resources")
    items = resources.values() if isinstance(resources, dict) else resources if isinstance(resources, list) else []
    changed = False
    for resource in items:
        if not isinstance(resource, dict) or str(get_ci(resource, "type") or "").lower() != DEPLOYMENTS:
            continue
        props = get_ci(resource, "properties")
        if not isinstance(props, dict):
            continue
        inline = get_ci(props, "template")
        if isinstance(inline, dict):
            changed |= inline_relative_links(inline, folder, depth + 1)
            continue
        link_key = find_key(props, "templateLink")
        link = props.get(link_key) if link_key else None
        relative = get_ci(link, "relativePath") if isinstance(link, dict) else None
        if not isinstance(relative, str) or relative.startswith("[") or link_key is None:
            continue
        if depth >= MAX_DEPTH:
            raise LinkedFileError(f"Linked templates nest deeper than {MAX_DEPTH} levels at '{relative}'.")
        path = (folder / relative).resolve()
        linked = read_linked(path)
        inline_relative_links(linked, path.parent, depth + 1)
        del props[link_key]
        props["template"] = linked
        options_key = find_key(props, "expressionEvaluationOptions") or "expressionEvaluationOptions"
        props[options_key] = {"scope": "inner"}
        changed = True
    return changed


def read_linked(path: Path) -> dict[str, Any]:
    try:
        document = loads(strip_comments(decode(path.read_bytes())))
    except OSError as exc:
        raise LinkedFileError(f"Cannot read the linked template '{path}': {exc.strerror or exc}.") from None
    except TemplateError as exc:
        raise LinkedFileError(f"The linked template '{path}' is not valid JSON: {exc.message}") from None
    if not isinstance(document, dict):
        raise LinkedFileError(f"The linked template '{path}' must contain a JSON object.")
    return document
