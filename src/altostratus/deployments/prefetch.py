"""A deployment body's links, fetched before the handler's transaction (the route's prepare step).

A ``templateLink`` takes as long as the tenant's server wants to answer; fetched inside the handler's write
transaction it held the database's write lock for that long, stalling every other writer (controllers included).
So the PUT, validate and what-if routes fetch here first, outside any transaction, and the handler takes the
content from ``ctx.extra``. A failed fetch is kept, not raised: the handler raises it where it always did, so the
order of errors (a missing group before a bad link, a bad mode before either) is unchanged. A body this step cannot
read is left to the handler, which refuses it with the right message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from altostratus.arm.errors import ArmError
from altostratus.arm.outbound import policy_of
from altostratus.deployments.links import fetch_link, link_uri
from altostratus.templates import TemplateError
from altostratus.templates.loader import load_document
from altostratus.templates.values import find_key, get_ci

if TYPE_CHECKING:
    from altostratus.arm.context import Platform

EXTRA_KEY = "deployments.links"


def body_links(props: dict[str, Any]) -> dict[str, Any]:
    """The links of a deployment's ``properties`` the handler will read, by what they hold: the template link only
    when there is no inline template (both together are refused before any fetch)."""
    links = {}
    template_key = find_key(props, "template")
    if (template_key is None or props.get(template_key) is None) and (link := get_ci(props, "templateLink")):
        links["template"] = link
    if (parameters_link := get_ci(props, "parametersLink")) is not None:
        links["parameters"] = parameters_link
    return links


class FetchedLinks:
    """What the prepare step fetched: content, or the ArmError the handler raises in its place."""

    def __init__(self, results: dict[str, bytes | ArmError]) -> None:
        self._results = results

    def content(self, link: Any, what: str) -> bytes:
        link_uri(link, what)  # a malformed link is refused as before, never fetched
        result = self._results.get(what)
        if result is None:
            # The prepare step saw no such link in this body: nothing was fetched, and nothing may be now.
            raise ArmError(400, "InvalidContentLink", f"The content at the {what} link could not be fetched.")
        if isinstance(result, ArmError):
            raise result
        return result


def prepare_links(params: dict[str, str], raw_body: bytes, services: Platform) -> dict[str, Any]:
    """The route's prepare step (arm/routing.py ``Prepare``): fetch the body's links under the outbound policy."""
    results: dict[str, bytes | ArmError] = {}
    try:
        doc, _ = load_document(raw_body) if raw_body.strip() else (None, None)
    except TemplateError:
        doc = None
    props = get_ci(doc, "properties") if isinstance(doc, dict) else None
    if isinstance(props, dict):
        policy = policy_of(services.settings)
        for what, link in body_links(props).items():
            try:
                results[what] = fetch_link(link, what, policy)
            except ArmError as err:
                results[what] = err
    return {EXTRA_KEY: FetchedLinks(results)}


def fetched(extra: dict[str, Any]) -> FetchedLinks:
    """The prepared links of a request (none for a request that did not go through the prepare step)."""
    links = extra.get(EXTRA_KEY)
    return links if isinstance(links, FetchedLinks) else FetchedLinks({})
