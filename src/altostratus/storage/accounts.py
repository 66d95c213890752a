"""Microsoft.Storage/storageAccounts: accounts as ARM resources with their endpoints and keys.

The Azure Stack quickstart scale-set templates declare an account and build the ``vhdContainers`` of unmanaged
disks from ``reference(account, providers('Microsoft.Storage', 'storageAccounts').apiVersions[0])
.primaryEndpoints.blob``; others pass ``listKeys(account, version).keys[0].value`` to diagnostics settings. Both
work. The blob endpoint is served by blob_service.py (enough to upload a VHD and boot a scale set from it:
user_images.py); no queue, table or file service answers. Unmanaged scale-set disks (``vhdContainers``) live with
the hypervisor driver, not in the account.

api-version 2015-06-15 describes the replication as ``properties.accountType``; later ones as ``sku`` and ``kind``.
Either spelling is accepted with any version, stored as ``sku``/``kind``, and answered in the spelling of the
request's version, as Azure does. Names are global, as on Azure: they are DNS labels of the endpoints.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.endpoints import storage_suffix
from altostratus.resources.fields import choice
from altostratus.resources.generic import Draft, PlainType, group_routes_base, register_plain_type
from altostratus.resources.groups import require_group
from altostratus.store.db import iso, utcnow
from altostratus.store.models import Resource

NS = "Microsoft.Storage"
# Up to 2019-06-01, the newest of the hybrid profiles (2016-01-01, 2017-10-01, 2019-06-01); 2015-06-15 is what
# the Azure Stack quickstart templates name; 2025-08-01 is what the current az's `storage account create` sends.
VERSIONS = (
    "2025-08-01", "2025-06-01", "2025-01-01", "2024-01-01", "2023-05-01", "2023-01-01", "2022-09-01", "2022-05-01",
    "2021-09-01", "2021-08-01", "2021-06-01", "2021-04-01", "2021-02-01", "2021-01-01", "2020-08-01-preview",
    "2019-06-01", "2019-04-01", "2018-11-01", "2018-07-01", "2018-02-01", "2017-10-01", "2017-06-01", "2016-12-01",
    "2016-05-01", "2016-01-01", "2015-06-15",
)  # fmt: skip
FIRST_SKU_VERSION = "2016-01-01"
SKUS = ("Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Premium_LRS")
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
NAME = re.compile(r"^[a-z0-9]{3,24}$")
KEYS = "accessKeys"  # stored beside sku/kind; render() never shows it, only listKeys does
SERVICES = ("blob", "queue", "table", "file")


def check_account_name(name: str) -> None:
    if not NAME.match(name):
        raise ArmError(
            400,
            "AccountNameInvalid",
            f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters "
            "in length and use numbers and lower-case letters only.",
            "name",
        )


def _invalid(field: str, why: str) -> ArmError:
    message = f"Values for request parameters are invalid: {field}. {why}"
    return ArmError(400, "InvalidValuesForRequestParameters", message, field)


def _sku_name(d: Draft) -> str:
    sku = d.body.get("sku")
    value = obj(sku, "sku").get("name") if sku is not None else d.properties.get("accountType")
    if value is None:
        raise _invalid("sku", "A storage account needs sku.name (properties.accountType with api-version 2015-06-15).")
    try:
        return choice(value, SKUS, "sku.name")
    except ArmError:
        raise _invalid("sku", f"'{value}' is not one of {', '.join(SKUS)}.") from None


def _check_unique(d: Draft) -> None:
    taken = d.ctx.db.scalars(
        select(Resource.id).where(
            Resource.type_key == f"{NS}/storageAccounts".lower(),
            Resource.name_key == d.name.lower(),
            Resource.resource_group_id != d.group.id,
        )
    ).first()
    if taken is not None:
        raise ArmError(
            409, "StorageAccountAlreadyTaken", f"The storage account named {d.name} is already taken.", "name"
        )


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def complete_account(d: Draft) -> dict[str, Any]:
    sku = _sku_name(d)
    try:
        kind = choice(d.body.get("kind"), KINDS, "kind", default="Storage")
    except ArmError:
        raise _invalid("kind", f"'{d.body.get('kind')}' is not one of {', '.join(KINDS)}.") from None
    _check_unique(d)
    previous = d.previous_properties
    props = {k: v for k, v in d.properties.items() if k != "accountType"}
    suffix = storage_suffix(d.ctx)
    services = ("blob",) if kind == "BlobStorage" else SERVICES
    props.update(
        primaryEndpoints={service: f"https://{d.name}.{service}.{suffix}/" for service in services},
        primaryLocation=d.ctx.services.settings.location,
        statusOfPrimary="available",
        creationTime=previous.get("creationTime") or iso(utcnow()),
    )
    keys = (d.previous or {}).get(KEYS) or [new_key(), new_key()]
    body = {k: v for k, v in d.body.items() if k not in ("sku", "kind", KEYS)}
    return {**body, "sku": {"name": sku, "tier": sku.split("_")[0]}, "kind": kind, KEYS: keys, "properties": props}


def old_shape(api_version: str | None) -> bool:
    return bool(api_version) and str(api_version)[:10] < FIRST_SKU_VERSION


def present(body: dict[str, Any], api_version: str | None) -> dict[str, Any]:
    """2015-06-15 answers ``properties.accountType`` and knows neither ``sku`` nor ``kind``."""
    if not old_shape(api_version):
        return body
    out = {k: v for k, v in body.items() if k not in ("sku", "kind")}
    out["properties"] = {"accountType": (body.get("sku") or {}).get("name"), **body.get("properties", {})}
    return out


# Azure answers a create with 200 (or 202 while it provisions), never 201; azure-mgmt-storage checks for those.
SPEC = PlainType(
    NS,
    "storageAccounts",
    VERSIONS,
    complete_account,
    present=present,
    check_name=check_account_name,
    created_status=200,
)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    handlers = register_plain_type(router, registry, SPEC)

    def list_keys(ctx: RequestContext) -> Response:
        """The two keys made when the account was created (templates call ``listKeys(account, version)``)."""
        row = handlers.require(ctx, require_group(ctx))
        keys = row.body.get(KEYS) or []
        if old_shape(ctx.api_version):
            return json_response({f"key{i + 1}": key for i, key in enumerate(keys)})
        return json_response(
            {"keys": [{"keyName": f"key{i + 1}", "value": key, "permissions": "FULL"} for i, key in enumerate(keys)]}
        )

    router.add("POST", group_routes_base(SPEC) + "/{name}/listKeys", list_keys, resource_type=SPEC.full_name)

    def check_name(ctx: RequestContext) -> Response:
        """Whether an account name is free (``az storage account create`` asks before it creates one)."""
        name = ctx.json().get("name")
        if not isinstance(name, str) or not NAME.match(name):
            message = f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
            message += "characters in length and use numbers and lower-case letters only."
            return json_response({"nameAvailable": False, "reason": "AccountNameInvalid", "message": message})
        taken = ctx.db.scalars(
            select(Resource.id).where(
                Resource.type_key == f"{NS}/storageAccounts".lower(), Resource.name_key == name.lower()
            )
        ).first()
        if taken is None:
            return json_response({"nameAvailable": True})
        message = f"The storage account named {name} is already taken."
        return json_response({"nameAvailable": False, "reason": "AlreadyExists", "message": message})

    check = registry.add_type(NS, "checkNameAvailability", VERSIONS).full_name
    router.add(
        "POST", "/subscriptions/{subscriptionId}/providers/Microsoft.Storage/checkNameAvailability", check_name,
        resource_type=check,
    )  # fmt: skip
