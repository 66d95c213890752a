"""The official SDK as a tenant uses it: credentials, client arguments, and the SDK *lines* the tests run on.

Two lines of the official SDK cannot share a virtualenv: the hybrid line (azure-mgmt-resource 23.x and
azure-mgmt-compute 35.x, which take an Azure Stack Hub API profile) and the current releases (azure-mgmt-compute
39, azure-mgmt-resource 26 with deployments and subscriptions split into packages of their own). An SDK test takes
the ``sdk`` fixture, an :class:`SdkLine`, and gets its clients from it, so one test body runs on every line the
running venv has. Where the lines truly differ (an operation only one has, a model shape), the test branches on a
capability of the line, never on its name. The SDK packages are imported only when a client is made, so every test
module imports in either venv.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from tests.support.server import AltoServer

HYBRID_PROFILES = ("2018-03-01-hybrid", "2019-03-01-hybrid", "2020-09-01-hybrid")
CURRENT = "current"
# The lines an SDK test runs on unless it names its own with @pytest.mark.sdk_lines(...): the two profiles Azure
# Stack Hub tenants use today, and the current releases.
DEFAULT_LINES = ("2018-03-01-hybrid", "2020-09-01-hybrid", CURRENT)
# The api-versions each line sends: the profiles' (azure.profiles), and the current packages' defaults
# (azure-mgmt-compute 39, azure-mgmt-resource-deployments 2.0.0).
API_VERSIONS = {
    "2018-03-01-hybrid": {"compute": "2017-03-30", "deployments": "2018-02-01"},
    "2019-03-01-hybrid": {"compute": "2017-12-01", "deployments": "2018-05-01"},
    "2020-09-01-hybrid": {"compute": "2020-06-01", "deployments": "2019-10-01"},
    CURRENT: {"compute": "2026-04-01", "deployments": "2026-06-01"},
}


def sdk_credential(srv: AltoServer, principal: str = "tenant", creds: dict[str, Any] | None = None) -> Any:
    """The official azure-identity credential, pointed at our authority (MSAL does the OIDC discovery)."""
    from azure.identity import ClientSecretCredential

    c = srv.credentials
    p = creds or c[principal]
    return ClientSecretCredential(
        c["tenantId"],
        p["clientId"],
        p["clientSecret"],
        authority=c["armEndpoint"],
        disable_instance_discovery=True,
        connection_verify=srv.ca,
    )


def sdk_kwargs(srv: AltoServer) -> dict[str, Any]:
    return {
        "base_url": srv.endpoint,
        "credential_scopes": [srv.endpoint + "/.default"],
        "connection_verify": srv.ca,
    }


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def installed_lines() -> tuple[str, ...]:
    """The SDK lines this venv can run: the current line where the split-out deployments package is, else the
    hybrid profiles where azure.profiles is there. (azure.profiles alone does not say: azure-common ships it, and
    azure-mgmt-authorization brings azure-common into the current line's venv too.)"""
    if not _importable("azure.mgmt.compute"):
        return ()
    if _importable("azure.mgmt.resource.deployments"):
        return (CURRENT,)
    return HYBRID_PROFILES if _importable("azure.profiles") else ()


@dataclass(frozen=True)
class ResourcesView:
    """Groups, providers, resources and deployments as one client: azure-mgmt-resource 23 has them in one, the
    current releases in two packages; a test body written against this runs on both."""

    resource_groups: Any
    providers: Any
    resources: Any
    deployments: Any
    deployment_operations: Any


@dataclass(frozen=True)
class SdkLine:
    """One line of the official SDK; gives a test its clients and says what that line can do."""

    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def hybrid(self) -> bool:
        return self.name != CURRENT

    @property
    def profile(self) -> Any:
        """The azure.profiles.KnownProfiles member of a hybrid line."""
        assert self.hybrid, "the current SDK line has no API profiles"
        from azure.profiles import KnownProfiles

        return KnownProfiles[f"v{self.name.replace('-', '_')}"]

    def _profile_kwargs(self) -> dict[str, Any]:
        return {"profile": self.profile} if self.hybrid else {}

    # ------------------------------------------------------------------------------------------------ clients

    def resource(self, server: AltoServer, creds: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """ResourceManagementClient: resource groups, providers, generic resources (as ``creds``, a principal
        with its ``subscriptionId``, when given; else the default tenant)."""
        if self.hybrid:
            from azure.mgmt.resource import ResourceManagementClient
        else:
            from azure.mgmt.resource.resources import ResourceManagementClient
        sub = (creds or server.credentials["tenant"])["subscriptionId"]
        return ResourceManagementClient(
            sdk_credential(server, creds=creds), sub, **self._profile_kwargs(), **kwargs, **sdk_kwargs(server)
        )

    def deployments(self, server: AltoServer, creds: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """The client with ``deployments`` and ``deployment_operations``: the resources client on the hybrid
        line, DeploymentsMgmtClient (azure-mgmt-resource-deployments) on the current one (as ``creds`` when
        given)."""
        if self.hybrid:
            return self.resource(server, creds, **kwargs)
        from azure.mgmt.resource.deployments import DeploymentsMgmtClient

        sub = (creds or server.credentials["tenant"])["subscriptionId"]
        return DeploymentsMgmtClient(sdk_credential(server, creds=creds), sub, **kwargs, **sdk_kwargs(server))

    def arm(self, server: AltoServer, **kwargs: Any) -> ResourcesView:
        """The Microsoft.Resources operations a tenant uses, wherever the line's packages keep them."""
        rc = self.resource(server, **kwargs)
        dc = self.deployments(server, **kwargs) if not self.hybrid else rc
        return ResourcesView(rc.resource_groups, rc.providers, rc.resources, dc.deployments, dc.deployment_operations)

    def subscriptions(self, server: AltoServer, creds: dict[str, Any] | None = None) -> Any:
        """SubscriptionClient: subscriptions, locations, tenants."""
        if self.hybrid:
            from azure.mgmt.resource import SubscriptionClient
        else:
            from azure.mgmt.resource.subscriptions import SubscriptionClient
        return SubscriptionClient(sdk_credential(server, creds=creds), **self._profile_kwargs(), **sdk_kwargs(server))

    def compute(self, server: AltoServer, creds: dict[str, Any] | None = None) -> Any:
        """ComputeManagementClient: scale sets, their VMs, the image catalogue (as ``creds`` when given)."""
        from azure.mgmt.compute import ComputeManagementClient

        sub = (creds or server.credentials["tenant"])["subscriptionId"]
        return ComputeManagementClient(
            sdk_credential(server, creds=creds), sub, **self._profile_kwargs(), **sdk_kwargs(server)
        )

    def authorization(self, server: AltoServer, creds: dict[str, Any] | None = None) -> Any:
        """AuthorizationManagementClient: role assignments and definitions. The hybrid line speaks 2015-07-01, the
        roles version of the 2018-03-01 and 2019-03-01 hybrid profiles (2020-09-01-hybrid names 2016-09-01 for the
        namespace, a version with locks only, so the client is given the roles version explicitly)."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        sub = (creds or server.credentials["tenant"])["subscriptionId"]
        version = {"api_version": "2015-07-01"} if self.hybrid else {}
        return AuthorizationManagementClient(sdk_credential(server, creds=creds), sub, **version, **sdk_kwargs(server))

    def role_assignment(self, role_definition_id: str, principal_id: str) -> Any:
        """The create parameters of a role assignment in the model of the line's api-version."""
        if self.hybrid:
            from azure.mgmt.authorization.v2015_07_01 import models as old

            return old.RoleAssignmentCreateParameters(
                properties=old.RoleAssignmentProperties(
                    role_definition_id=role_definition_id, principal_id=principal_id
                )
            )
        from azure.mgmt.authorization.v2022_04_01 import models as new

        return new.RoleAssignmentCreateParameters(role_definition_id=role_definition_id, principal_id=principal_id)

    # ------------------------------------------------------------------------------------------------ capabilities

    def speaks(self, api: str, at_least: str) -> bool:
        """Whether the line sends ``api`` ("compute" or "deployments") at that api-version or a later one: what
        an operation or a model field of the line exists from."""
        return API_VERSIONS[self.name][api] >= at_least

    def compute_properties(self, model: Any) -> Any:
        """Where a compute model's properties are: the hybrid line flattens them onto the model, the current
        release keeps them under ``.properties`` as on the wire."""
        return model if self.hybrid else model.properties

    def wire(self, model: Any) -> dict[str, Any]:
        """A model as the REST JSON (camelCase, read-only fields included)."""
        if self.hybrid:
            return dict(model.serialize(keep_readonly=True))
        return dict(model.as_dict())
