"""``/metadata/endpoints``: how Azure Stack clients (msrestazure, az cloud register, Add-AzEnvironment)
discover the login endpoint and token audience of a cloud. Unauthenticated by design."""

from __future__ import annotations

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import NO_VERSION, Access, Router
from altostratus.resources.versions import METADATA


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
    return json_response(
        {
            "galleryEndpoint": base,
            "graphEndpoint": base,
            "portalEndpoint": base,
            "authentication": {"loginEndpoint": base, "audiences": [base]},
        }
    )


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    router.add("GET", "/metadata/endpoints", endpoints, resource_type=NO_VERSION, access=Access.PUBLIC)
