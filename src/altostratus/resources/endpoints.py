"""The DNS names this cloud gives resources, derived from what ``environment()`` reports.

Azure Stack Hub names storage endpoints ``{account}.blob.{region}.{external domain}`` and public IP labels
``{label}.{region}.cloudapp.{external domain}``. Our ``environment().suffixes.storage`` is ``{location}.{host the
client called}`` (`stamp_environment`), so both names are derived from that one suffix: a
template that builds a blob URL from ``environment()`` gets the same URL as ``reference(account).primaryEndpoints``.
These names are not served by any DNS server; they are what the control plane reports.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from altostratus.arm.context import RequestContext


def stamp_environment(base_url: str, location: str, tenant_id: str) -> dict[str, Any]:
    """``environment()`` of this cloud: its own endpoints, Azure Stack Hub style suffixes."""
    host = urlsplit(base_url).hostname or "localhost"
    base = base_url.rstrip("/") + "/"
    suffix = f"{location}.{host}"
    return {
        "name": "AzureStack",
        "gallery": base,
        "graph": base,
        "portal": base,
        "graphAudience": base,
        "activeDirectoryDataLake": "",
        "batch": "",
        "media": "",
        "sqlManagement": "",
        "vmImageAliasDoc": "",
        "resourceManager": base,
        "authentication": {"loginEndpoint": base, "audiences": [base], "tenant": tenant_id, "identityProvider": "AAD"},
        "suffixes": {
            "acrLoginServer": "",
            "azureDatalakeAnalyticsCatalogAndJob": "",
            "azureDatalakeStoreFileSystem": "",
            "azureFrontDoorEndpointSuffix": "",
            "keyvaultDns": f".vault.{suffix}",
            "sqlServerHostname": "",
            "storage": suffix,
        },
    }


def storage_suffix(ctx: RequestContext) -> str:
    env = stamp_environment(ctx.base_url, ctx.services.settings.location, "")
    return str(env["suffixes"]["storage"])


def cloudapp_zone(ctx: RequestContext) -> str:
    """``{location}.cloudapp.{external domain}``, the zone of public IP ``domainNameLabel``s."""
    location = ctx.services.settings.location
    suffix = storage_suffix(ctx)
    domain = suffix[len(location) + 1 :] if suffix.startswith(location + ".") else suffix
    return f"{location}.cloudapp.{domain}"
