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


def login_endpoint(base_url: str) -> str:
    """The AD FS-style login endpoint: ``<arm>/adfs``, as an Azure Stack Hub with AD FS publishes its own.

    Clients decide how to sign in from this URL alone: azure-cli and MSAL treat one ending in ``/adfs`` as AD FS
    (tenant ``adfs``, OpenID discovery at ``<login>/.well-known/openid-configuration``, no instance discovery at a
    Microsoft host); any other URL is taken for Azure AD and validated against login.microsoftonline.com, which
    knows nothing of this cloud. arm/oauth.py serves the documents and the token endpoint under it."""
    return base_url.rstrip("/") + "/adfs"


def stamp_environment(base_url: str, location: str, tenant_id: str) -> dict[str, Any]:
    """``environment()`` of this cloud, and ``/metadata/endpoints`` from 2022-09-01 on: its own endpoints,
    AD FS sign-in, Azure Stack Hub style suffixes."""
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
        "authentication": {
            "loginEndpoint": login_endpoint(base_url) + "/",
            "audiences": [base],
            "tenant": tenant_id,
            "identityProvider": "ADFS",
        },
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
