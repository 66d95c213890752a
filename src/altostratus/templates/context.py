"""What an expression can see: the deployment's scope, parameters, variables, loops and resource callbacks.

The template language itself has no access to storage or HTTP. Everything that depends on where and how a template
is deployed comes from an :class:`EvaluationContext` that the deployment engine builds: the subscription and
resource group (``subscription()``, ``resourceGroup()``, ``resourceId()``), the deployment (``deployment()``), the
cloud's endpoints (``environment()``), parameter and variable values, the current copy-loop indexes, and callbacks for
the functions that read live resources (``reference()``, ``list*()``, ``providers()``, ...). Contexts are cheap to
derive (:meth:`EvaluationContext.derive`), so a copy-loop iteration or a user-defined function call gets its own
without copying parameters or variables.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from altostratus.templates.errors import TemplateError

# Functions that only make sense in some places of a template (ARM rejects them elsewhere).
NON_DETERMINISTIC = frozenset({"utcnow", "newguid"})
RUNTIME_STATE = frozenset({"reference", "references", "list*"})

# Where an expression is being evaluated, and which functions ARM forbids there.
PHASE_RESTRICTIONS: dict[str, frozenset[str]] = {
    "parameters": RUNTIME_STATE | {"variables", "copyindex"},
    "variables": RUNTIME_STATE | NON_DETERMINISTIC,
    "function": RUNTIME_STATE | NON_DETERMINISTIC | {"variables"},
    "resources": NON_DETERMINISTIC,
    # name, type, location, copy.count...: must be known before any resource is deployed
    "resource-header": RUNTIME_STATE | NON_DETERMINISTIC,
    "outputs": NON_DETERMINISTIC,
    "any": frozenset(),
}

ReferenceCallback = Callable[[str, "str | None", bool], Any]
"""``reference(nameOrId, apiVersion, full)`` -> the resource's properties (or the full object when ``full``)."""
ReferencesCallback = Callable[[str, bool], list[Any]]
"""``references(symbolicName, full)`` -> one entry per deployed instance of a copy loop."""
ListCallback = Callable[[str, str, "str | None", Any], Any]
"""``list*(functionName, nameOrId, apiVersion, functionValues)`` -> the action's response (``listKeys``...)."""
ProvidersCallback = Callable[[str, "str | None"], Any]
"""``providers(namespace, resourceType)`` -> ``{resourceType, locations, apiVersions}`` (or the list of them)."""
ZonesCallback = Callable[[str, str, str], list[str]]
"""``(namespace, resourceType, location)`` -> the zones the cloud supports there (Azure Stack Hub: none)."""
ResourceInfoCallback = Callable[[str], Any]
"""``resourceInfo(symbolicName)`` -> ``{apiVersion, id, name, type, resourceGroup}``."""

AZURE_CLOUD_ENVIRONMENT: dict[str, Any] = {
    "name": "AzureCloud",
    "gallery": "https://gallery.azure.com/",
    "graph": "https://graph.windows.net/",
    "portal": "https://portal.azure.com",
    "graphAudience": "https://graph.windows.net/",
    "activeDirectoryDataLake": "https://datalake.azure.net/",
    "batch": "https://batch.core.windows.net/",
    "media": "https://rest.media.azure.net",
    "sqlManagement": "https://management.core.windows.net:8443/",
    "vmImageAliasDoc": (
        "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/"
        "aliases.json"
    ),
    "resourceManager": "https://management.azure.com/",
    "authentication": {
        "loginEndpoint": "https://login.microsoftonline.com/",
        "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
        "tenant": "common",
        "identityProvider": "AAD",
    },
    "suffixes": {
        "acrLoginServer": ".azurecr.io",
        "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
        "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
        "azureFrontDoorEndpointSuffix": "azurefd.net",
        "keyvaultDns": ".vault.azure.net",
        "sqlServerHostname": ".database.windows.net",
        "storage": "core.windows.net",
    },
}
"""``environment()`` of global Azure (the documented example); the engine passes the stamp's own values."""


class NamedValues(Mapping[str, Any]):
    """Parameters or variables: case-insensitive lookup that keeps the declared case, evaluated lazily.

    Values are either set directly or deferred (a thunk run on first use, memoised). Evaluating on demand is what
    lets a variable use a variable declared after it, and lets a parameter default use another parameter; a name that
    (indirectly) needs itself is reported as a circular reference instead of recursing forever. Resolution holds a
    re-entrant lock so that resources evaluated on several threads share one memoised value (and never see another
    thread's evaluation as a cycle).
    """

    def __init__(self, kind: str, values: Mapping[str, Any] | None = None) -> None:
        self.kind = kind  # "parameter" or "variable"
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._pending: dict[str, Callable[[], Any]] = {}
        self._evaluating: list[str] = []
        self._lock = threading.RLock()
        for name, value in (values or {}).items():
            self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        key = name.casefold()
        self._names[key] = name
        self._values[key] = value
        self._pending.pop(key, None)

    def defer(self, name: str, thunk: Callable[[], Any]) -> None:
        key = name.casefold()
        self._names[key] = name
        self._values.pop(key, None)
        self._pending[key] = thunk

    def resolve(self, name: str) -> Any:
        """The value of ``name``, evaluating it now if it is deferred."""
        key = name.casefold()
        if key in self._values:
            return self._values[key]
        with self._lock:
            return self._resolve_locked(name, key)

    def _resolve_locked(self, name: str, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        thunk = self._pending.get(key)
        if thunk is None:
            help_link = "parameters" if self.kind == "parameter" else "variables"
            raise TemplateError(
                f"The template {self.kind} '{name}' is not found. "
                f"Please see https://aka.ms/arm-syntax-{help_link} for usage details."
            )
        if key in self._evaluating:
            chain = " -> ".join(self._names[k] for k in self._evaluating[self._evaluating.index(key) :])
            raise TemplateError(
                f"The template {self.kind} '{self._names[key]}' is not valid: circular reference detected "
                f"({chain} -> {self._names[key]})."
            )
        self._evaluating.append(key)
        try:
            value = thunk()
        finally:
            self._evaluating.pop()
        self._values[key] = value
        del self._pending[key]
        return value

    def resolve_all(self) -> dict[str, Any]:
        """Every value (in declaration order), evaluating deferred ones."""
        return {self._names[key]: self.resolve(self._names[key]) for key in list(self._names)}

    def __getitem__(self, name: str) -> Any:
        return self.resolve(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names.values()))

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class UserFunction:
    """A member of the template's ``functions`` section, called as ``namespace.name(...)``."""

    namespace: str
    name: str
    parameters: list[dict[str, Any]]
    output: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass
class EvaluationContext:
    """Everything an expression can read. The deployment engine fills it in; tests use the defaults.

    Scope: ``subscription_id``/``tenant_id``/``subscription_display_name`` for ``subscription()``;
    ``resource_group``/``resource_group_location``/``resource_group_tags``/``resource_group_managed_by`` for
    ``resourceGroup()`` (``resource_group=None`` means a subscription-scope deployment); ``management_group`` for
    ``managementGroup()`` and ``managementGroupResourceId()``.

    Deployment: ``deployment_name``, ``deployment_mode``, ``template`` (for ``deployment().properties.template``),
    ``template_link`` (``{"uri": ...}`` for linked templates), ``deployment_location`` (non-RG scopes),
    ``deployment_parameters`` (``{name: {"value": v}}``); or a complete ``deployment`` object that overrides them.

    Values: ``parameters``/``variables`` (plain mappings are wrapped in :class:`NamedValues`),
    ``user_functions`` keyed by lower-case ``namespace.name``, ``copy_indexes`` (loop name -> index; the key ``""``
    is the current resource/output loop that a bare ``copyIndex()`` means), ``lambda_variables``.

    Phase: ``phase`` is one of ``parameters``, ``variables``, ``function``, ``resources``, ``outputs``, ``any`` and
    selects which functions are rejected (``reference()`` in variables, ``utcNow()`` outside parameter defaults...).

    Callbacks (``None`` means "not available here" and the function fails like ARM does at that location):
    ``reference``, ``references``, ``list_action``, ``providers``, ``resource_info``; ``zones`` for ``pickZones()``;
    ``now``/``new_guid`` for ``utcNow()``/``newGuid()``.
    """

    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    tenant_id: str = "00000000-0000-0000-0000-000000000000"
    subscription_display_name: str = "Default Provider Subscription"
    tenant_display_name: str = "Default Directory"
    tenant_country_code: str = "US"
    resource_group: str | None = "rg"
    resource_group_location: str = "local"
    resource_group_tags: dict[str, str] = field(default_factory=dict)
    resource_group_managed_by: str | None = None
    management_group: str | None = None
    management_group_display_name: str | None = None
    management_group_parent: dict[str, Any] | None = None

    deployment_name: str = "deployment"
    deployment_mode: str = "Incremental"
    deployment_location: str | None = None
    template: dict[str, Any] = field(default_factory=dict)
    template_link: dict[str, Any] | None = None
    deployment_parameters: dict[str, Any] = field(default_factory=dict)
    deployment: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=lambda: dict(AZURE_CLOUD_ENVIRONMENT))

    parameters: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    user_functions: dict[str, UserFunction] = field(default_factory=dict)
    copy_indexes: dict[str, int] = field(default_factory=dict)
    lambda_variables: dict[str, Any] = field(default_factory=dict)
    phase: str = "any"

    reference: ReferenceCallback | None = None
    references: ReferencesCallback | None = None
    list_action: ListCallback | None = None
    providers: ProvidersCallback | None = None
    resource_info: ResourceInfoCallback | None = None
    zones: ZonesCallback | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_guid: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    source: Any = None
    """The :class:`~altostratus.templates.loader.SourceMap` of the template, to put line/column on errors."""

    def __post_init__(self) -> None:
        if not isinstance(self.parameters, NamedValues):
            self.parameters = NamedValues("parameter", self.parameters)
        if not isinstance(self.variables, NamedValues):
            self.variables = NamedValues("variable", self.variables)

    # ------------------------------------------------------------------------------------------- derivation

    def derive(self, **changes: Any) -> EvaluationContext:
        """A shallow copy with some fields replaced (parameters/variables objects are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def with_copy_index(self, loop: str, index: int, *, current: bool = False) -> EvaluationContext:
        """A context inside iteration ``index`` of loop ``loop``; ``current`` also makes it the bare ``copyIndex()``."""
        indexes = dict(self.copy_indexes)
        indexes[loop.casefold()] = index
        if current:
            indexes[""] = index
        return self.derive(copy_indexes=indexes)

    def with_phase(self, phase: str) -> EvaluationContext:
        if phase not in PHASE_RESTRICTIONS:
            raise ValueError(f"unknown phase {phase!r}")
        return self.derive(phase=phase)

    # --------------------------------------------------------------------------------------------- accessors

    @property
    def parameter_values(self) -> NamedValues:
        assert isinstance(self.parameters, NamedValues)
        return self.parameters

    @property
    def variable_values(self) -> NamedValues:
        assert isinstance(self.variables, NamedValues)
        return self.variables

    def check_allowed(self, function: str) -> None:
        """Reject a function ARM does not allow in the current phase."""
        key = function.casefold()
        restricted = PHASE_RESTRICTIONS.get(self.phase, frozenset())
        if key in restricted or (key.startswith("list") and "list*" in restricted):
            raise TemplateError(
                f"The template function '{function}' is not expected at this location. "
                "Please see https://aka.ms/arm-template-expressions for usage details."
            )

    def copy_index(self, loop: str | None) -> int:
        key = "" if loop is None else loop.casefold()
        if key not in self.copy_indexes:
            if loop is None:
                raise TemplateError(
                    "The template function 'copyIndex' is not expected at this location. The function can only be "
                    "used in a resource with copy specified. Please see https://aka.ms/arm-copy for usage details."
                )
            raise TemplateError(
                f"The template function 'copyIndex' has an invalid loop name '{loop}': there is no copy loop with "
                "that name around this expression. Please see https://aka.ms/arm-copy for usage details."
            )
        return self.copy_indexes[key]

    # ------------------------------------------------------------------------------------------- scope objects

    def resource_group_id(self) -> str:
        if self.resource_group is None:
            raise TemplateError(
                "The template function 'resourceGroup' is not expected at this location: the deployment is not "
                "at resource group scope. Please see https://aka.ms/arm-template-expressions for usage details."
            )
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def resource_group_object(self) -> dict[str, Any]:
        group: dict[str, Any] = {
            "id": self.resource_group_id(),
            "name": self.resource_group,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.resource_group_location,
        }
        if self.resource_group_managed_by:
            group["managedBy"] = self.resource_group_managed_by
        if self.resource_group_tags:
            group["tags"] = dict(self.resource_group_tags)
        group["properties"] = {"provisioningState": "Succeeded"}
        return group

    def subscription_object(self) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription_id}",
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": self.subscription_display_name,
        }

    def tenant_object(self) -> dict[str, Any]:
        return {
            "countryCode": self.tenant_country_code,
            "displayName": self.tenant_display_name,
            "id": f"/tenants/{self.tenant_id}",
            "tenantId": self.tenant_id,
        }

    def management_group_object(self) -> dict[str, Any]:
        if self.management_group is None:
            raise TemplateError(
                "The template function 'managementGroup' is not expected at this location: the deployment is not "
                "at management group scope. Please see https://aka.ms/arm-template-expressions for usage details."
            )
        properties: dict[str, Any] = {}
        if self.management_group_parent is not None:
            properties["details"] = {"parent": dict(self.management_group_parent)}
        properties["displayName"] = self.management_group_display_name or self.management_group
        return {
            "id": f"/providers/Microsoft.Management/managementGroups/{self.management_group}",
            "name": self.management_group,
            "type": "/providers/Microsoft.Management/managementGroups",
            "properties": properties,
        }

    def deployment_object(self) -> dict[str, Any]:
        if self.deployment is not None:
            return self.deployment
        from altostratus.templates.hashing import template_hash

        properties: dict[str, Any] = {}
        if self.template_link is not None:
            properties["templateLink"] = dict(self.template_link)
        properties["template"] = self.template
        properties["templateHash"] = template_hash(self.template)
        properties["parameters"] = self.deployment_parameters
        properties["mode"] = self.deployment_mode
        properties["provisioningState"] = "Accepted"
        result: dict[str, Any] = {"name": self.deployment_name}
        if self.resource_group is None and self.deployment_location is not None:
            result["location"] = self.deployment_location
        result["properties"] = properties
        return result
