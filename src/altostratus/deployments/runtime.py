"""What template functions read while a deployment runs: ``reference()``, ``references()``, ``resourceInfo()``
and ``list*()``.

A deployment has no second way to look at a resource: a reference is the resource's own ``GET`` and a list action
its ``POST {id}/{action}``, sent through the router as the deploying caller (:mod:`~altostratus.deployments.client`),
so a template reads exactly what the tenant could read and a provider's answer is never guessed at. The plan tells
a template resource (whose api-version and group the template fixes) from an arbitrary resource id. What-if uses the
same runtime, so its predictions read the same values.
"""

from __future__ import annotations

from typing import Any

from altostratus.arm.registry import ProviderRegistry
from altostratus.deployments.client import InternalClient
from altostratus.deployments.plan import Plan, PlannedResource, resource_id, type_of_id
from altostratus.templates import TemplateError


class Runtime:
    """``reference()`` and ``list*()`` of a running deployment: GET/POST through the router."""

    def __init__(
        self, client: InternalClient, registry: ProviderRegistry, subscription_id: str, group: str | None
    ) -> None:
        self.client = client
        self.registry = registry
        self.subscription_id = subscription_id
        self.group = group
        self.plan: Plan | None = None

    def locate(self, target: str, function: str) -> tuple[str, str | None, PlannedResource | None]:
        found = self.plan.resolve(target) if self.plan is not None else []
        if found:
            if len(found) > 1:
                raise TemplateError(
                    f"The template function '{function}' names '{target}', which is {len(found)} resources (a copy "
                    "loop or an ambiguous name); name one resource."
                )
            return found[0].id, found[0].api_version, found[0]
        if target.startswith("/"):
            return target, None, None
        segments = [s for s in target.split("/") if s]
        if len(segments) >= 3 and len(segments) % 2 == 1:
            half = (len(segments) + 1) // 2
            rtype, name = "/".join(segments[:half]), "/".join(segments[half:])
            return resource_id(self.subscription_id, self.group, rtype, name), None, None
        raise TemplateError(
            f"The template reference '{target}' is not valid: could not find template resource or resource copy with "
            "this name. Please see https://aka.ms/arm-function-reference for usage details."
        )

    def _version(self, rid: str, given: str | None, planned: str | None) -> tuple[str, str]:
        parsed = type_of_id(rid)
        if parsed is None:
            raise TemplateError(f"The resource id '{rid}' is not valid.")
        rtype = self.registry.get_type(parsed[0])
        version = given or planned or (rtype.api_versions[0] if rtype else None)
        if version is None:
            raise TemplateError(
                f"The resource type '{parsed[0]}' is not known: reference() needs an apiVersion for it.",
                code="InvalidResourceType",
            )
        return parsed[0], version

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        rid, planned, res = self.locate(target, "reference")
        rtype, version = self._version(rid, api_version, planned)
        response = self.client.request("GET", rid, api_version=version)
        if response.status != 200 or not isinstance(response.body, dict):
            error = response.error()
            raise TemplateError(
                f"The template function 'reference' could not read '{rid}': {error.get('message', '')}",
                code=str(error.get("code", "ResourceNotFound")),
            )
        body = response.body
        if not full:
            return body.get("properties", {})
        parsed = type_of_id(rid)
        return {
            **body,
            "apiVersion": version,
            "subscriptionId": self.subscription_id,
            "resourceGroupName": res.resource_group if res else self.group,
            "resourceId": f"{rtype}/{parsed[1] if parsed else ''}",
            "referenceApiVersion": version,
            "condition": True,
            "isConditionTrue": True,
            "isTemplateResource": res is not None,
            "isAction": False,
            "provisioningOperation": "Read",
        }

    def references(self, symbol: str, full: bool) -> list[Any]:
        """``references('loop')`` (languageVersion 2.0): one entry per deployed instance, in copy-index order."""
        instances = [r for r in (self.plan.resolve(symbol) if self.plan else []) if r.condition]
        if not instances:
            raise TemplateError(f"The template reference '{symbol}' is not valid: no resource has that symbolic name.")
        instances.sort(key=lambda r: r.copy_index or 0)
        return [self.reference(r.id, r.api_version, full) for r in instances]

    def resource_info(self, symbol: str) -> dict[str, Any]:
        found = self.plan.resolve(symbol) if self.plan else []
        if len(found) != 1:
            raise TemplateError(
                f"The template function 'resourceInfo' needs one resource; '{symbol}' names {len(found)}."
            )
        res = found[0]
        return {
            "apiVersion": res.api_version,
            "id": res.id,
            "name": res.name,
            "type": res.type,
            "resourceGroup": res.resource_group,
        }

    def list_action(self, function: str, target: str, api_version: str | None, values: Any) -> Any:
        rid, planned, _ = self.locate(target, function)
        rtype, version = self._version(rid, api_version, planned)
        response = self.client.request("POST", f"{rid}/{function}", api_version=version, body=values)
        if response.status in (404, 405) or (response.status == 400 and response.error().get("code") in (
            "InvalidResourceType", "InvalidResourceNamespace"
        )):  # fmt: skip
            raise TemplateError(
                f"The resource type '{rtype}' does not support the action '{function}'.", code="InvalidTemplate"
            )
        if not response.ok:
            error = response.error()
            raise TemplateError(
                f"The action '{function}' on '{rid}' failed: {error.get('message', '')}",
                code=str(error.get("code", "BadRequest")),
            )
        return response.body
