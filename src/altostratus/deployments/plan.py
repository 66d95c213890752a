"""From a template's ``resources`` to the resource instances a deployment creates, and their dependency graph.

This is ARM's preflight expansion (docs: resource-dependency, copy-resources, child-resource-name-type): resource
``copy`` loops (count, parallel or serial with ``batchSize``), ``condition``, child resources nested in ``resources``
(short type and name made full), ``apiVersion`` from the template's ``apiProfile``, resource ids, and the graph of
``dependsOn`` (by resource id, ``type/name``, bare name, copy-loop name or symbolic name) plus the implicit edges of
``reference()``/``list*()`` calls that name a resource of the template. Only header values are evaluated here (name,
type, condition, copy count, dependsOn): they may not read live state, so a plan is the same every time it is built.
Resource bodies are evaluated later, just before each resource is sent to its provider.

Everything here is pure: no HTTP, no database. Errors are :class:`TemplateError` (``InvalidTemplate``, or
``InvalidTemplateCircularDependency`` for a cycle) located in the template when its source map is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from altostratus.templates import EvaluationContext, TemplateError, eval_node, evaluate, iter_expression_calls
from altostratus.templates.interpreter import copy_count
from altostratus.templates.loader import join_path
from altostratus.templates.profiles import PROFILE_NAMES, is_known_profile, profile_api_version
from altostratus.templates.values import find_key, get_ci, is_int, type_name

DEPLOYMENTS_TYPE = "Microsoft.Resources/deployments"
MAX_RESOURCES = 800
# Properties of a template resource that steer the deployment and are never sent to the resource provider.
TEMPLATE_KEYS = frozenset(
    k.casefold()
    for k in (
        "condition", "copy", "dependsOn", "resources", "apiVersion", "type", "name", "comments", "metadata",
        "scope", "existing", "resourceGroup", "subscriptionId", "symbolicName", "parent", "import", "$schema",
    )
)  # fmt: skip
_INSTANCE = re.compile(r"^(?P<symbol>[A-Za-z_][\w:]*)\[(?P<index>\d+)\]$")


@dataclass
class PlannedResource:
    """One resource instance of the deployment (a copy-loop iteration or a child resource counts as one)."""

    path: str  # JSON path of the definition in the template, for error positions
    definition: dict[str, Any]
    type: str
    name: str
    api_version: str
    id: str
    resource_group: str | None  # None: the resource is the subscription's (a group, a subscription deployment)
    symbolic: str | None = None
    copy_name: str | None = None
    copy_index: int | None = None
    copy_indexes: dict[str, int] = field(default_factory=dict)  # the loops in effect for the body
    condition: bool = True
    existing: bool = False  # languageVersion 2.0 "existing": read, never deployed
    batch: int | None = None  # serial copy loops: the batch this instance belongs to
    explicit: list[str] = field(default_factory=list)  # evaluated dependsOn entries
    depends_on: set[str] = field(default_factory=set)  # keys of other planned resources

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def namespace(self) -> str:
        return self.type.split("/", 1)[0]

    @property
    def type_name(self) -> str:
        """``Namespace/type/name`` as dependsOn entries spell it: the type followed by the name."""
        return f"{self.type}/{self.name}"

    @property
    def active(self) -> bool:
        """Deployed by this deployment: condition true and not an ``existing`` reference."""
        return self.condition and not self.existing

    @property
    def is_deployment(self) -> bool:
        return self.type.lower() == DEPLOYMENTS_TYPE.lower()


@dataclass
class Plan:
    resources: list[PlannedResource]
    by_key: dict[str, PlannedResource]
    _ids: dict[str, list[PlannedResource]] = field(default_factory=dict)
    _type_names: dict[str, list[PlannedResource]] = field(default_factory=dict)
    _names: dict[str, list[PlannedResource]] = field(default_factory=dict)
    _loops: dict[str, list[PlannedResource]] = field(default_factory=dict)
    _symbols: dict[str, list[PlannedResource]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for res in self.resources:
            self._ids.setdefault(res.key, []).append(res)
            if res.type.lower() == RESOURCE_GROUPS_TYPE.lower() and res.resource_group is None:
                # subscriptionResourceId() spells a group's id with the provider segment; both name it.
                sub = res.id.split("/")[2]
                alias = f"/subscriptions/{sub}/providers/{RESOURCE_GROUPS_TYPE}/{res.name}".lower()
                self._ids.setdefault(alias, []).append(res)
            self._type_names.setdefault(res.type_name.lower(), []).append(res)
            self._names.setdefault(res.name.lower(), []).append(res)
            if res.copy_name:
                self._loops.setdefault(res.copy_name.lower(), []).append(res)
            if res.symbolic:
                self._symbols.setdefault(res.symbolic, []).append(res)

    @property
    def active(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.active]

    def resolve(self, text: str) -> list[PlannedResource]:
        """The resources a ``dependsOn`` entry or a ``reference()`` target names ([] when none)."""
        key = text.strip().lower()
        if not key:
            return []
        for table, lookup in ((self._symbols, text.strip()), (self._ids, key)):
            if lookup in table:
                return list(table[lookup])
        match = _INSTANCE.match(text.strip())
        if match and match.group("symbol") in self._symbols:
            instances = self._symbols[match.group("symbol")]
            index = int(match.group("index"))
            return [r for r in instances if r.copy_index == index]
        for table in (self._loops, self._type_names, self._names):
            if key in table:
                return list(table[key])
        if key.startswith("/subscriptions/"):
            return []
        # "Microsoft.Network/loadBalancers/lb" also written with a leading "providers/" or a trailing slash.
        trimmed = key.removeprefix("providers/").strip("/")
        return list(self._type_names.get(trimmed, []))

    def runnable_dependencies(self, res: PlannedResource) -> set[str]:
        """Dependencies that are deployed here: edges to condition-false resources are dropped, as ARM does."""
        return {d for d in res.depends_on if self.by_key[d].active}


# ------------------------------------------------------------------------------------------------------ building


RESOURCE_GROUPS_TYPE = "Microsoft.Resources/resourceGroups"


def resource_id(
    subscription_id: str, resource_group: str | None, rtype: str, name: str, scope: str | None = None
) -> str:
    """``/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{t1}/{n1}/{t2}/{n2}`` (or below ``scope``, or below the
    subscription when there is no group: a subscription-scope deployment's resources). A resource group's own id has
    no ``providers`` segment."""
    if resource_group is None and scope is None and rtype.strip("/").lower() == RESOURCE_GROUPS_TYPE.lower():
        return f"/subscriptions/{subscription_id}/resourceGroups/{name.strip('/')}"
    type_segments = [s for s in rtype.split("/") if s]
    name_segments = [s for s in name.split("/") if s]
    parts = [type_segments[0]]
    for type_part, name_part in zip(type_segments[1:], name_segments, strict=False):
        parts.extend((type_part, name_part))
    if scope:
        base = scope.rstrip("/")
    elif resource_group is None:
        base = f"/subscriptions/{subscription_id}"
    else:
        base = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
    return f"{base}/providers/" + "/".join(parts)


def type_of_id(rid: str) -> tuple[str, str] | None:
    """``(type, name)`` of a resource id (the innermost ``providers/`` segment), or None."""
    segments = [s for s in rid.split("/") if s]
    lowered = [s.lower() for s in segments]
    if "providers" not in lowered:
        return None
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = segments[at + 1 :]
    if len(rest) < 3 or len(rest) % 2 == 0:
        return None
    types = [rest[0]] + rest[1::2]
    names = rest[2::2]
    return "/".join(types), "/".join(names)


class _Builder:
    def __init__(
        self,
        template: dict[str, Any],
        ctx: EvaluationContext,
        subscription_id: str,
        resource_group: str | None,
    ) -> None:
        self.template = template
        self.ctx = ctx
        self.header = ctx.with_phase("resource-header")
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        profile = get_ci(template, "apiProfile")
        if profile is not None and (not isinstance(profile, str) or not is_known_profile(profile)):
            raise self.error(
                f"The api profile '{profile}' is not supported. The supported profiles are "
                f"'{', '.join(PROFILE_NAMES)}'.",
                "apiProfile",
            )
        self.profile: str | None = profile
        self.out: list[PlannedResource] = []

    def error(self, message: str, path: str, code: str = "InvalidTemplate") -> TemplateError:
        return TemplateError(message, path, code=code).locate(self.ctx.source)

    def at(self, path: str) -> str:
        pos = self.ctx.source.position(path) if self.ctx.source is not None else None
        return f" at line '{pos[0]}' and column '{pos[1]}'" if pos else ""

    # ------------------------------------------------------------------------------------------- top level

    def build(self) -> None:
        raw = get_ci(self.template, "resources")
        if raw is None:
            raise self.error("The template must have a 'resources' property.", "")
        if isinstance(raw, dict):
            entries: Iterable[tuple[str, str | None, Any]] = (
                (join_path("resources", sym), sym, d) for sym, d in raw.items()
            )
        elif isinstance(raw, list):
            entries = ((f"resources[{i}]", None, d) for i, d in enumerate(raw))
        else:
            raise self.error(
                f"The template 'resources' must be an array (or an object of symbolic names); it is of type "
                f"'{type_name(raw)}'.",
                "resources",
            )
        for path, symbolic, definition in entries:
            self.top(definition, path, symbolic)
            if len(self.out) > MAX_RESOURCES:
                raise self.error(
                    f"The template has more than {MAX_RESOURCES} resources after copy loops are expanded. "
                    "Please see https://aka.ms/arm-copy for usage details.",
                    "resources",
                )

    def top(self, definition: Any, path: str, symbolic: str | None) -> None:
        if not isinstance(definition, dict):
            raise self.error(f"The template resource{self.at(path)} must be a JSON object.", path)
        copy_key = find_key(definition, "copy")
        if copy_key is None:
            self.instance(definition, path, symbolic, self.header)
            return
        copy = definition[copy_key]
        copy_path = join_path(path, copy_key)
        if not isinstance(copy, dict):
            raise self.error(f"The copy property of the template resource{self.at(path)} must be an object.", path)
        loop = get_ci(copy, "name", symbolic)
        if not isinstance(loop, str) or not loop:
            raise self.error(f"The copy of the template resource{self.at(path)} needs a 'name'.", copy_path)
        count_key = find_key(copy, "count")
        if count_key is None:
            raise self.error(f"The copy '{loop}'{self.at(copy_path)} needs a 'count'.", copy_path)
        count = copy_count(copy[count_key], self.header, join_path(copy_path, count_key))
        mode = str(evaluate(get_ci(copy, "mode", "parallel"), self.header, join_path(copy_path, "mode"))).lower()
        if mode not in ("parallel", "serial"):
            raise self.error(
                f"The copy mode '{mode}' of loop '{loop}' is not valid; use 'Parallel' or 'Serial'.", copy_path
            )
        batch_size: int | None = None
        if mode == "serial":
            raw_batch = evaluate(get_ci(copy, "batchSize", 1), self.header, join_path(copy_path, "batchSize"))
            if isinstance(raw_batch, str) and raw_batch.strip().isdigit():
                raw_batch = int(raw_batch)
            if not is_int(raw_batch) or raw_batch < 1:
                raise self.error(
                    f"The batch size '{raw_batch}' of copy loop '{loop}' must be a positive integer.", copy_path
                )
            batch_size = int(raw_batch)  # larger than the count: one batch
        for index in range(count):
            ictx = self.header.with_copy_index(loop, index, current=True)
            res = self.instance(definition, path, symbolic, ictx, loop=loop, index=index)
            if batch_size is not None:
                res.batch = index // batch_size

    # ------------------------------------------------------------------------------------------- instances

    def text(self, definition: dict[str, Any], key: str, ctx: EvaluationContext, path: str) -> Any:
        found = find_key(definition, key)
        if found is None:
            return None
        return evaluate(definition[found], ctx, join_path(path, found))

    def condition(self, definition: dict[str, Any], ctx: EvaluationContext, path: str) -> bool:
        value = self.text(definition, "condition", ctx, path)
        if value is None:
            return True
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(
                f"The template resource condition{self.at(path)} must evaluate to a boolean; it is of type "
                f"'{type_name(value)}'.",
                join_path(path, "condition"),
            )
        return value

    def instance(
        self,
        definition: dict[str, Any],
        path: str,
        symbolic: str | None,
        ctx: EvaluationContext,
        *,
        loop: str | None = None,
        index: int | None = None,
        parent: PlannedResource | None = None,
    ) -> PlannedResource:
        rtype = self.text(definition, "type", ctx, path)
        if not isinstance(rtype, str) or rtype.count("/") < 1 and parent is None or not rtype.strip("/"):
            raise self.error(
                f"The template resource{self.at(path)} is not valid: the 'type' property must be a resource type "
                "such as 'Microsoft.Compute/virtualMachineScaleSets'.",
                path,
            )
        name = self.text(definition, "name", ctx, path)
        if not isinstance(name, str) or not name.strip("/"):
            raise self.error(
                f"The template resource '{name or ''}'{self.at(path)} is not valid. The name property cannot be null "
                "or empty. Please see https://aka.ms/arm-syntax-resources for usage details.",
                path,
            )
        full_type, full_name = rtype.strip("/"), name.strip("/")
        if parent is not None:
            first = full_type.split("/", 1)[0]
            if "." not in first:
                full_type = f"{parent.type}/{full_type}"
            expected = full_type.count("/")
            if full_name.count("/") + 1 < expected:
                full_name = f"{parent.name}/{full_name}"
        if full_type.count("/") != full_name.count("/") + 1:
            raise self.error(
                f"The template resource '{full_name}' for type '{full_type}'{self.at(path)} has incorrect segment "
                "lengths. A nested resource type must have identical number of segments as its resource name. A root "
                "resource type must have segment length one greater than its resource name. Please see "
                "https://aka.ms/arm-syntax-resources for usage details.",
                path,
            )
        api_version = self.text(definition, "apiVersion", ctx, path)
        if api_version is None and self.profile is not None:
            api_version = profile_api_version(self.profile, full_type)
        if not isinstance(api_version, str) or not api_version:
            reason = (
                f"the api profile '{self.profile}' does not define a version for this type"
                if self.profile
                else "the template sets no apiProfile"
            )
            raise self.error(
                f"The template resource '{full_name}'{self.at(path)} is not valid: it has no 'apiVersion' and "
                f"{reason}.",
                path,
            )
        group = self.resource_group
        scope = None
        if full_type.lower() == DEPLOYMENTS_TYPE.lower():
            target_group = self.text(definition, "resourceGroup", ctx, path)
            if isinstance(target_group, str) and target_group:
                group = target_group
            target_sub = self.text(definition, "subscriptionId", ctx, path)
            if isinstance(target_sub, str) and target_sub and target_sub.lower() != self.subscription_id.lower():
                raise self.error(
                    f"The nested deployment '{full_name}'{self.at(path)} targets subscription '{target_sub}'; "
                    "deployments across subscriptions are not supported.",
                    path,
                )
        else:
            raw_scope = self.text(definition, "scope", ctx, path)
            if isinstance(raw_scope, str) and raw_scope:
                scope = raw_scope if raw_scope.startswith("/") else None
                if scope is None:
                    # a symbolic name or type/name of a template resource
                    targets = Plan(self.out, {r.key: r for r in self.out}).resolve(raw_scope)
                    if not targets:
                        raise self.error(f"The scope '{raw_scope}'{self.at(path)} is not a resource id.", path)
                    scope = targets[0].id
        depends = self.text(definition, "dependsOn", ctx, path)
        if depends is None:
            depends = []
        if not isinstance(depends, list):
            raise self.error(f"The 'dependsOn' of the template resource '{full_name}' must be an array.", path)
        explicit = [d for d in depends if d is not None]
        if not all(isinstance(d, str) for d in explicit):
            raise self.error(f"The 'dependsOn' entries of the template resource '{full_name}' must be strings.", path)
        condition = self.condition(definition, ctx, path) and (parent.condition if parent else True)
        res = PlannedResource(
            path=path,
            definition=definition,
            type=full_type,
            name=full_name,
            api_version=api_version,
            id=resource_id(self.subscription_id, group, full_type, full_name, scope),
            resource_group=group,
            symbolic=symbolic,
            copy_name=loop,
            copy_index=index,
            copy_indexes=dict(ctx.copy_indexes),
            condition=condition,
            existing=get_ci(definition, "existing") is True,
            explicit=explicit,
        )
        self.out.append(res)
        children = get_ci(definition, "resources")
        if children is not None:
            if not isinstance(children, list):
                raise self.error(f"The child resources of '{full_name}' must be an array.", path)
            for i, child in enumerate(children):
                child_path = f"{path}.resources[{i}]"
                if not isinstance(child, dict):
                    raise self.error(f"The template resource{self.at(child_path)} must be a JSON object.", child_path)
                if find_key(child, "copy") is not None:
                    raise self.error(
                        f"The child resource{self.at(child_path)} of '{full_name}' cannot have a copy loop; declare it "
                        "at the top level instead. Please see https://aka.ms/arm-copy for usage details.",
                        child_path,
                    )
                self.instance(child, child_path, None, ctx, parent=res)
        return res


# ------------------------------------------------------------------------------------------------- dependencies


def _implicit_targets(res: PlannedResource, ctx: EvaluationContext) -> Iterable[str]:
    """First arguments of ``reference()``/``list*()`` calls in the resource's body that evaluate without state."""
    body = {k: v for k, v in res.definition.items() if k.casefold() not in TEMPLATE_KEYS}
    if res.is_deployment:
        props = get_ci(body, "properties")
        if isinstance(props, dict):  # the nested template's own expressions are not the parent's
            body = {**body, "properties": {k: v for k, v in props.items() if k.casefold() != "template"}}
    try:
        calls = list(iter_expression_calls(body))
    except TemplateError:
        return
    header = ctx.with_phase("resource-header").derive(copy_indexes=dict(res.copy_indexes))
    for call in calls:
        name = call.name.casefold()
        if (name == "reference" or name.startswith("list")) and call.args:
            try:
                value = eval_node(call.args[0], header)
            except TemplateError:
                continue
            if isinstance(value, str):
                yield value


def link(plan: Plan, ctx: EvaluationContext) -> None:
    """Fill ``depends_on``: explicit entries, implicit reference()/list*() targets, serial copy batches."""
    batches: dict[tuple[str, int], list[PlannedResource]] = {}
    for res in plan.resources:
        if res.batch is not None and res.copy_name:
            batches.setdefault((res.copy_name.lower(), res.batch), []).append(res)
    for res in plan.resources:
        for entry in res.explicit:
            targets = plan.resolve(entry)
            if not targets:
                if entry.strip().lower().startswith("/subscriptions/"):
                    continue  # a resource outside this template: it must exist already
                raise TemplateError(
                    f"The resource '{entry}' is not defined in the template. Please see https://aka.ms/arm-syntax "
                    "for usage details.",
                    join_path(res.path, find_key(res.definition, "dependsOn") or "dependsOn"),
                ).locate(ctx.source)
            res.depends_on.update(t.key for t in targets if t.key != res.key)
        for target in _implicit_targets(res, ctx):
            res.depends_on.update(t.key for t in plan.resolve(target) if t.key != res.key)
        if res.batch and res.copy_name:
            res.depends_on.update(t.key for t in batches.get((res.copy_name.lower(), res.batch - 1), []))


def check_cycles(plan: Plan, ctx: EvaluationContext) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in plan.active:
        if state.get(start.key):
            continue
        stack: list[tuple[PlannedResource, list[str]]] = [(start, sorted(plan.runnable_dependencies(start)))]
        state[start.key] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                state[node.key] = 2
                stack.pop()
                continue
            nxt = plan.by_key[pending.pop()]
            mark = state.get(nxt.key)
            if mark == 1:
                raise TemplateError(
                    f"Circular dependency detected on resource: '{nxt.id}'. Please see "
                    "https://aka.ms/arm-template/#resources for usage details.",
                    nxt.path,
                    code="InvalidTemplateCircularDependency",
                ).locate(ctx.source)
            if mark is None:
                state[nxt.key] = 1
                stack.append((nxt, sorted(plan.runnable_dependencies(nxt))))


def build_plan(
    template: dict[str, Any], ctx: EvaluationContext, *, subscription_id: str, resource_group: str | None
) -> Plan:
    """Expand, link and check the resources of a prepared template (``ctx`` from :func:`prepare`)."""
    builder = _Builder(template, ctx, subscription_id, resource_group)
    builder.build()
    by_key: dict[str, PlannedResource] = {}
    for res in builder.out:
        other = by_key.get(res.key)
        if other is not None and other.active and res.active:
            raise TemplateError(
                f"The resource '{res.id}'{builder.at(res.path)} is defined multiple times in a template. Please see "
                "https://aka.ms/arm-template/#resources for usage details.",
                res.path,
            ).locate(ctx.source)
        if other is None or res.active:
            by_key[res.key] = res
    plan = Plan([r for r in builder.out if by_key[r.key] is r], by_key)
    link(plan, ctx)
    check_cycles(plan, ctx)
    return plan


# ------------------------------------------------------------------------------------------------ rendering


def target(res: PlannedResource) -> dict[str, str]:
    return {"id": res.id, "resourceType": res.type, "resourceName": res.name}


def dependencies(plan: Plan) -> list[dict[str, Any]]:
    """``properties.dependencies`` of a deployment: every resource with dependencies, and what it waits for."""
    out = []
    for res in plan.active:
        deps = [plan.by_key[d] for d in sorted(plan.runnable_dependencies(res))]
        if deps:
            out.append({"dependsOn": [target(d) for d in deps], **target(res)})
    return out


def providers(plan: Plan, location: str) -> list[dict[str, Any]]:
    """``properties.providers``: the namespaces and types the deployment uses."""
    spaces: dict[str, dict[str, str]] = {}
    for res in plan.active:
        ns, _, short = res.type.partition("/")
        spaces.setdefault(ns.lower(), {"": ns})[short.lower()] = short
    return [
        {
            "namespace": names[""],
            "resourceTypes": [{"resourceType": t, "locations": [location]} for k, t in names.items() if k],
        }
        for _, names in sorted(spaces.items())
    ]
