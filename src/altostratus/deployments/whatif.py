"""What-if: the changes a deployment would make, worked out without changing anything.

The template is prepared exactly as a deployment would prepare it (same parameters, plan and request bodies:
:mod:`.prepare`, :func:`.bodies.resource_body`), and each body is compared with what the resource's own ``GET``
answers now, through the router and as the caller, so a tenant learns nothing it could not read anyway. Only
properties the template sets are compared: what a provider computes (ids, provisioningState, addresses) is not a
change.

Like ARM, what-if cannot know the result of ``reference()`` to a resource that does not exist yet; such values
stay unevaluated (shown as the expression) and count as a change. Nested inline and linked deployments are
expanded (up to :data:`MAX_DEPTH` levels) so their resources are reported too. It runs as an operation
(``202`` + ``Location``) because reading every resource of a large template takes a while.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from altostratus.arm.caller import Caller
from altostratus.arm.operations import OperationTask, ProgressFn
from altostratus.arm.outbound import policy_of
from altostratus.deployments.bodies import nested_input, resource_body
from altostratus.deployments.client import InternalClient
from altostratus.deployments.links import fetch_link, fetch_template
from altostratus.deployments.plan import TEMPLATE_KEYS, PlannedResource
from altostratus.deployments.prepare import DeploymentInput, prepare_deployment, template_error_body
from altostratus.deployments.runtime import Runtime
from altostratus.store.db import Database
from altostratus.templates import EvaluationContext, TemplateError, evaluate, read_parameters
from altostratus.templates.values import find_key, get_ci

if TYPE_CHECKING:
    from altostratus.arm.context import Platform

KIND = "deployments/whatIf"
MAX_DEPTH = 5
LIST_VERSION = "2019-10-01"
IDENTITY = frozenset({"id", "name", "type", "apiversion", "etag", "dependson", "condition", "copy", "comments"})
# Providers never return these, so a template that sets them would otherwise always look like a change.
WRITE_ONLY = frozenset({"adminpassword", "customdata", "protectedsettings"})


# ---------------------------------------------------------------------------------------------- comparing


def _same_scalar(key: str, want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, str) and isinstance(have, str):
        # Providers normalise the case of enum-like values ("tcp" -> "Tcp", "Standard_DS2_v2" -> "Standard_DS2_V2")
        # and ids; ARM's what-if does not report such differences either.
        if key.lower() == "location":
            return want.replace(" ", "").lower() == have.replace(" ", "").lower()
        return want.lower() == have.lower()
    # "false" in a template and false from the provider (ARM converts string-typed numbers and booleans).
    if isinstance(want, (str, bool, int, float)) and isinstance(have, (str, bool, int, float)):
        return str(want).lower() == str(have).lower()
    return False


def property_changes(want: dict[str, Any], have: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """ARM's ``delta``: object nesting becomes dotted paths; arrays get one entry with per-index children."""
    out: list[dict[str, Any]] = []
    for key, value in want.items():
        if not prefix and key.lower() in IDENTITY:
            continue
        path = f"{prefix}.{key}" if prefix else key
        found = find_key(have, key)
        if found is None or have[found] is None:
            if value is None or key.lower() in WRITE_ONLY or value == {} or value == []:
                continue
            out.append({"path": path, "propertyChangeType": "Create", "after": value})
            continue
        out.extend(_compare(path, key, value, have[found]))
    return out


def _compare(path: str, key: str, want: Any, have: Any) -> list[dict[str, Any]]:
    if isinstance(want, dict) and isinstance(have, dict):
        return property_changes(want, have, path)
    if isinstance(want, list) and isinstance(have, list):
        children = _array_changes(want, have)
        return [{"path": path, "propertyChangeType": "Array", "children": children}] if children else []
    if _same_scalar(key, want, have):
        return []
    return [{"path": path, "propertyChangeType": "Modify", "before": have, "after": want}]


def _array_changes(want: list[Any], have: list[Any]) -> list[dict[str, Any]]:
    children: list[dict[str, Any]] = []
    for index in range(max(len(want), len(have))):
        if index >= len(have):
            children.append({"path": str(index), "propertyChangeType": "Create", "after": want[index]})
        elif index >= len(want):
            children.append({"path": str(index), "propertyChangeType": "Delete", "before": have[index]})
        elif isinstance(want[index], dict) and isinstance(have[index], dict):
            inner = property_changes(want[index], have[index], "")
            if inner:
                children.append({"path": str(index), "propertyChangeType": "Modify", "children": inner})
        else:
            children.extend(
                {**change, "path": str(index)} for change in _compare(str(index), "", want[index], have[index])
            )
    return children


def predicted(before: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The resource after the PUT: what the template sets, over what the provider keeps or computes."""
    out = copy.deepcopy(before)
    for key, value in body.items():
        found = find_key(out, key)
        if isinstance(value, dict) and found is not None and isinstance(out[found], dict):
            out[found] = predicted(out[found], value)
        else:
            out[found or key] = copy.deepcopy(value)
    return out


# ------------------------------------------------------------------------------------------------ the run


class WhatIf:
    """One what-if request: the plan of the template (and its nested ones) against the resources as they are."""

    def __init__(self, services: Platform, client: InternalClient, result_format: str) -> None:
        self.services = services
        self.client = client
        self.ids_only = result_format.lower() == "resourceidonly"

    def run(self, inp: DeploymentInput) -> list[dict[str, Any]]:
        changes = self.changes(inp, depth=0)
        touched = {c["resourceId"].lower() for c in changes}
        if inp.resource_group is None:  # a subscription deployment leaves what it does not name alone, unlisted
            return sorted(changes, key=lambda c: c["resourceId"].lower())
        group = f"/subscriptions/{inp.subscription_id}/resourceGroups/{inp.resource_group}"
        complete = inp.mode.lower() == "complete"
        for item in self.group_resources(group):
            rid = str(item.get("id", ""))
            if rid.lower() in touched:
                continue
            if complete:
                changes.append(self.deletion(rid, str(item.get("type", ""))))
            else:
                changes.append({"resourceId": rid, "changeType": "Ignore"})
        return sorted(changes, key=lambda c: c["resourceId"].lower())

    def changes(self, inp: DeploymentInput, depth: int) -> list[dict[str, Any]]:
        runtime = Runtime(self.client, self.services.registry, inp.subscription_id, inp.resource_group)
        rctx, plan = prepare_deployment(inp, self.services.registry, runtime)
        out: list[dict[str, Any]] = []
        for res in plan.active:
            if res.is_deployment:
                out.extend(self.nested(res, rctx, inp, depth))
            else:
                out.append(self.change(res, rctx, inp.template, inp.template_link))
        return out

    def change(
        self, res: PlannedResource, rctx: EvaluationContext, template: dict[str, Any], link: dict[str, Any] | None
    ) -> dict[str, Any]:
        try:
            body = resource_body(res, rctx, template, link)
        except TemplateError:
            body = lenient_body(res, rctx)
        current = self.client.request("GET", res.id, api_version=res.api_version)
        identity = {"id": res.id, "name": res.name, "type": res.type, "apiVersion": res.api_version}
        if current.status == 404:
            change: dict[str, Any] = {"resourceId": res.id, "changeType": "Create", "after": {**identity, **body}}
        elif not current.ok or not isinstance(current.body, dict):
            error = current.error()
            return {
                "resourceId": res.id,
                "changeType": "Unsupported",
                "unsupportedReason": f"{error.get('code', 'Error')}: {error.get('message', '')}",
            }
        else:
            before = current.body
            delta = property_changes(body, before)
            change = {
                "resourceId": res.id,
                "changeType": "Modify" if delta else "NoChange",
                "before": before,
                "after": {**(predicted(before, body) if delta else before), "apiVersion": res.api_version},
            }
            if delta:
                change["delta"] = delta
        if self.ids_only:
            kind = "Create" if change["changeType"] == "Create" else "Deploy"
            return {"resourceId": res.id, "changeType": kind}
        return change

    def nested(
        self, res: PlannedResource, rctx: EvaluationContext, parent: DeploymentInput, depth: int
    ) -> list[dict[str, Any]]:
        """The resources a nested or linked deployment would deploy (Ignore when it can't be expanded)."""
        try:
            if depth >= MAX_DEPTH:
                raise TemplateError(f"Nested deployments deeper than {MAX_DEPTH} levels are not expanded.")
            child = self.child_input(res, resource_body(res, rctx, parent.template, parent.template_link), parent)
            return self.changes(child, depth + 1)
        except TemplateError:
            return [{"resourceId": res.id, "changeType": "Ignore"}]

    def child_input(self, res: PlannedResource, body: dict[str, Any], parent: DeploymentInput) -> DeploymentInput:
        props = get_ci(body, "properties") or {}
        template = get_ci(props, "template")
        if not isinstance(template, dict):
            link = get_ci(props, "templateLink")
            if link is None:
                raise TemplateError("The nested deployment has neither a template nor a templateLink.")
            template = fetch_template(link, policy_of(self.services.settings))
        info: dict[str, Any] = {}
        if res.resource_group is not None:  # None: a nested deployment of the subscription itself
            group_url = f"/subscriptions/{parent.subscription_id}/resourcegroups/{res.resource_group}"
            group = self.client.request("GET", group_url, api_version=LIST_VERSION)
            info = group.body if group.ok and isinstance(group.body, dict) else {}
        child = nested_input(
            res,
            body,
            parent,
            template=template,
            group_location=str(info.get("location") or parent.resource_group_location),
            group_tags=dict(info.get("tags") or {}),
        )
        if (params_link := get_ci(props, "parametersLink")) is not None:
            linked = read_parameters(fetch_link(params_link, "parameters", policy_of(self.services.settings)))
            child = dataclasses.replace(child, parameter_values={**linked, **child.parameter_values})
        return child

    def group_resources(self, group: str) -> list[dict[str, Any]]:
        url: str | None = f"{group}/resources"
        version: str | None = LIST_VERSION
        items: list[dict[str, Any]] = []
        while url:
            response = self.client.request("GET", url, api_version=version)
            if not response.ok or not isinstance(response.body, dict):
                return items
            items.extend(i for i in response.body.get("value") or [] if isinstance(i, dict))
            url, version = response.body.get("nextLink"), None
        return items

    def deletion(self, rid: str, rtype: str) -> dict[str, Any]:
        if self.ids_only:
            return {"resourceId": rid, "changeType": "Delete"}
        known = self.services.registry.get_type(rtype)
        version = known.api_versions[0] if known else LIST_VERSION
        current = self.client.request("GET", rid, api_version=version)
        change: dict[str, Any] = {"resourceId": rid, "changeType": "Delete"}
        if current.ok and isinstance(current.body, dict):
            change["before"] = current.body
        return change


def lenient_body(res: PlannedResource, rctx: EvaluationContext) -> dict[str, Any]:
    """The body with what can be evaluated now; values that need a resource not deployed yet stay expressions."""
    ctx = rctx.derive(copy_indexes=dict(res.copy_indexes))

    def attempt(value: Any, path: str) -> Any:
        try:
            return evaluate(value, ctx, path, drop_nulls=True)
        except TemplateError:
            if isinstance(value, dict):
                return {k: attempt(v, f"{path}.{k}") for k, v in value.items()}
            return value

    source = {k: v for k, v in res.definition.items() if k.casefold() not in TEMPLATE_KEYS}
    body = attempt(source, res.path)
    return body if isinstance(body, dict) else {}


# -------------------------------------------------------------------------------------------- the operation


def operation_params(inp: DeploymentInput, caller: Caller, result_format: str) -> dict[str, Any]:
    """What the operation needs to run on any node after a restart (the request itself is not kept)."""
    return {
        "input": {
            "subscription_id": inp.subscription_id,
            "tenant_id": inp.tenant_id,
            "subscription_display_name": inp.subscription_display_name,
            "resource_group": inp.resource_group,
            "resource_group_location": inp.resource_group_location,
            "resource_group_tags": inp.resource_group_tags,
            "name": inp.name,
            "mode": inp.mode,
            "template": inp.template,
            "template_link": inp.template_link,
            "parameter_values": inp.parameter_values,
            "base_url": inp.base_url,
            "location": inp.location,
        },
        "caller": {"client_id": caller.client_id, "role": caller.role, "tenant_id": caller.tenant_id},
        "resultFormat": result_format,
    }


def handler(services: Platform) -> Callable[[Database, OperationTask, ProgressFn], dict[str, Any] | None]:
    """The operation handler for :data:`KIND`: the result is the ``WhatIfOperationResult`` body."""

    def run(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
        inp = DeploymentInput(**task.params["input"])
        caller = Caller(**task.params["caller"])
        client = InternalClient(services, caller, inp.base_url)
        what_if = WhatIf(services, client, str(task.params.get("resultFormat") or "FullResourcePayloads"))
        try:
            result: dict[str, Any] = {"status": "Succeeded", "properties": {"changes": what_if.run(inp)}}
        except TemplateError as exc:
            result = {"status": "Failed", "error": template_error_body(exc)}
        return {"body": result}

    return run
