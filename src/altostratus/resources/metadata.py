"""``/metadata/endpoints``: how Azure Stack clients (msrestazure, az cloud register, Add-AzEnvironment)
discover the login endpoint and token audience of a cloud. Unauthenticated by design.

Two shapes, as ARM answers them: ``2015-01-01`` (what msrestazure, PowerShell and azure-cli 2.66 ask for) is the
flat Azure Stack document (``galleryEndpoint``, ``graphEndpoint``, ``portalEndpoint``, ``authentication``); from
``2022-09-01`` on (the current azure-cli's ``az cloud register``) it is one cloud object with ``name``,
``resourceManager``, ``authentication{loginEndpoint, audiences, tenant, identityProvider}`` and ``suffixes``, the
same object templates read from ``environment()``; ``2019-05-01`` is the list of such objects. Every shape
publishes the AD FS-style login endpoint (resources/endpoints.py :func:`login_endpoint`), so that clients sign
in without asking a Microsoft host about this cloud."""

from __future__ import annotations

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import NO_VERSION, Access, Router
from altostratus.resources.endpoints import login_endpoint, stamp_environment
from altostratus.resources.versions import METADATA, METADATA_CLOUD_LIST, METADATA_FLAT


def endpoints(ctx: RequestContext) -> Response:
    version = ctx.api_version
    if not version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in METADATA:
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{', '.join(METADATA)}'.",
        )
    base = ctx.base_url + "/"
    if version in METADATA_FLAT:
        return json_response(
            {
                "galleryEndpoint": base,
                "graphEndpoint": base,
                "portalEndpoint": base,
                "authentication": {"loginEndpoint": login_endpoint(ctx.base_url) + "/", "audiences": [base]},
            }
        )
    cloud = stamp_environment(ctx.base_url, ctx.services.settings.location, ctx.services.tokens.tenant_id)
    return json_response([cloud] if version in METADATA_CLOUD_LIST else cloud)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    router.add("GET", "/metadata/endpoints", endpoints, resource_type=NO_VERSION, access=Access.PUBLIC)
