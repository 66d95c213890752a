"""Content links: the ``templateLink``/``parametersLink`` a deployment names instead of sending content inline.

A deployment's ``PUT`` fetches its links, what-if fetches the links of the nested deployments it expands, and every
nested deployment resolves its ``relativePath`` against its parent's URI before its own ``PUT``. The rules (http or
https only, 4 MB, 30 s, the ``contentVersion`` guard, how a relative path inherits the parent's SAS query) are the
same for all three, so they live here rather than in any one of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from altostratus.arm import outbound
from altostratus.arm.errors import ArmError
from altostratus.arm.outbound import OutboundPolicy
from altostratus.templates import TemplateError
from altostratus.templates.loader import load_document
from altostratus.templates.values import get_ci

MAX_LINKED_BYTES = 4 << 20
LINK_TIMEOUT = 30.0


def link_uri(link: Any, what: str) -> str:
    """The ``uri`` of a ``templateLink``/``parametersLink``, refused with ARM's message unless http or https."""
    uri = get_ci(link, "uri") if isinstance(link, dict) else None
    if not isinstance(uri, str) or not uri:
        raise ArmError(
            400,
            "InvalidContentLink",
            f"The {what} link must have a 'uri' (template specs by 'id' are not supported; 'relativePath' works in a "
            "template that was itself deployed from a URI).",
        )
    if not uri.lower().startswith(("http://", "https://")):
        raise ArmError(400, "InvalidContentLink", f"The {what} link '{uri}' must be an http or https URI.")
    return uri


def fetch_link(link: Any, what: str, policy: OutboundPolicy) -> bytes:
    """The content of a ``templateLink``/``parametersLink``, fetched under the outbound policy (arm/outbound.py).

    Never call this inside a write transaction: the fetch takes as long as the tenant's server wants (up to
    ``LINK_TIMEOUT`` per read). Every failure is the same message, so the answer tells nothing about what is at
    an address (an open port, a closed one, an HTTP error page)."""
    uri = link_uri(link, what)
    try:
        return outbound.fetch(policy, uri, timeout=LINK_TIMEOUT, max_bytes=MAX_LINKED_BYTES)
    except outbound.OutboundTooLarge:
        raise ArmError(400, "InvalidContentLink", f"The {what} at '{uri}' exceeds 4 MB.") from None
    except outbound.OutboundRefused:
        raise ArmError(
            400, "InvalidContentLink", f"The content at the {what} link '{uri}' could not be fetched."
        ) from None


def fetch_template(link: Any, policy: OutboundPolicy) -> dict[str, Any]:
    """A linked template, read leniently like an inline one (BOM, comments, trailing commas)."""
    document, _ = load_document(fetch_link(link, "template", policy))
    if not isinstance(document, dict):
        raise TemplateError("The linked template must be a JSON object.")
    return document


def check_content_version(link: Any, template: Any) -> None:
    """A link's ``contentVersion``, when given, must be the linked template's (a guard against a changed file)."""
    wanted = get_ci(link, "contentVersion") if isinstance(link, dict) else None
    found = get_ci(template, "contentVersion") if isinstance(template, dict) else None
    if isinstance(wanted, str) and wanted and wanted != found:
        raise ArmError(
            400,
            "InvalidContentLink",
            f"The provided content version '{wanted}' does not match the content version '{found}' of the template "
            f"at '{get_ci(link, 'uri')}'.",
        )


def resolve_relative_link(link: dict[str, Any], parent_link: dict[str, Any] | None) -> dict[str, Any]:
    """``templateLink.relativePath`` is relative to the parent's ``templateLink.uri`` (its SAS query is reused),
    as ARM resolves it; without a parent URI there is nothing to resolve against."""
    relative = get_ci(link, "relativePath")
    if not isinstance(relative, str) or get_ci(link, "uri"):
        return link
    base = get_ci(parent_link, "uri") if isinstance(parent_link, dict) else None
    if not isinstance(base, str) or not base:
        raise TemplateError(
            f"The templateLink.relativePath '{relative}' can only be used when the parent template was deployed from "
            "a templateLink.uri; deploy the main template by URI, or inline the linked file (the alto CLI does this "
            "for --template-file).",
            code="InvalidContentLink",
        )
    parts = urlsplit(base)
    target = urlsplit(urljoin(base, relative))
    uri = urlunsplit((target.scheme, target.netloc, target.path, target.query or parts.query, ""))
    return {**{k: v for k, v in link.items() if k.lower() != "relativepath"}, "uri": uri}
