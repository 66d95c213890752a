"""The scale-set create wizard: a form, a review step that shows the exact request and the equivalent ``alto`` and
``az`` commands, then Create: the same PUTs a client would send (the resource group when new, the provider
registration, the scale set). The API's errors come back next to the field their ``target`` names, and a
refused request creates nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal import tenant_data as data
from altostratus.portal.arm import COMPUTE_API, RESOURCES_API, ApiError
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, first, page, secure

UPGRADE_MODES = ("Manual", "Automatic", "Rolling")
FIELDS = ("subscription", "group_mode", "group", "name", "image", "version", "size", "capacity", "admin_user",
          "auth", "password", "ssh_key", "upgrade", "custom_data")  # fmt: skip
# The API's error targets, mapped to the wizard's fields (where the message is shown).
TARGETS = {
    "sku.capacity": "capacity",
    "sku.name": "size",
    "sku": "size",
    "imageReference": "image",
    "name": "name",
    "resourceGroupName": "group",
    "adminPassword": "password",
    "upgradePolicy": "upgrade",
    "customData": "custom_data",
    "computerNamePrefix": "name",
    "adminUsername": "admin_user",
    "upgradePolicy.mode": "upgrade",
    "imageReference.version": "version",
    "location": "_form",
}


def field_of(target: str | None) -> str | None:
    """The wizard field an API error's ``target`` names (its last matching part: ``properties.….adminPassword``)."""
    if not target:
        return None
    for key, field in sorted(TARGETS.items(), key=lambda kv: -len(kv[0])):
        if target == key or target.endswith("." + key) or target.endswith(key):
            return field
    return None


def scale_set_body(v: dict[str, str]) -> dict[str, Any]:
    pub, offer, sku = (v["image"].split(":") + ["", "", ""])[:3]
    os_profile: dict[str, Any] = {"computerNamePrefix": v["name"][:9] or "vm", "adminUsername": v["admin_user"]}
    if v["auth"] == "ssh":
        os_profile["linuxConfiguration"] = {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": f"/home/{v['admin_user']}/.ssh/authorized_keys", "keyData": v["ssh_key"]}]},
        }
    else:
        os_profile["adminPassword"] = v["password"]
    if v["custom_data"]:
        os_profile["customData"] = base64.b64encode(v["custom_data"].encode()).decode()
    return {
        "location": data.LOCATION,
        "sku": {
            "name": v["size"],
            "tier": "Standard",
            "capacity": int(v["capacity"]) if v["capacity"].isdigit() else v["capacity"],
        },
        "properties": {
            "overprovision": False,
            "upgradePolicy": {"mode": v["upgrade"]},
            "virtualMachineProfile": {
                "osProfile": os_profile,
                "storageProfile": {
                    "imageReference": {
                        "publisher": pub,
                        "offer": offer,
                        "sku": sku,
                        "version": v["version"] or "latest",
                    },
                    "osDisk": {"createOption": "FromImage", "caching": "ReadWrite"},
                },
                "networkProfile": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": "nic",
                            "properties": {"primary": True, "ipConfigurations": [{"name": "ipc", "properties": {}}]},
                        }
                    ]
                },
            },
        },
    }


def commands(v: dict[str, str]) -> tuple[str, str]:
    """The equivalent ``az`` and ``alto`` commands (secrets shown as placeholders)."""
    image = f"{v['image']}:{v['version'] or 'latest'}"
    az = [
        "az", "vmss", "create", "--resource-group", v["group"], "--name", v["name"], "--image", image,
        "--vm-sku", v["size"], "--instance-count", v["capacity"], "--admin-username", v["admin_user"],
        "--upgrade-policy-mode", v["upgrade"], "--subscription", v["subscription"],
    ]  # fmt: skip
    alto = [
        "alto", "vmss", "create", "--resource-group", v["group"], "--name", v["name"], "--image", image,
        "--vm-sku", v["size"], "--instance-count", v["capacity"], "--admin-username", v["admin_user"],
        "--upgrade-policy-mode", v["upgrade"],
    ]  # fmt: skip
    secret = ("--ssh-key-value", "<your public key>") if v["auth"] == "ssh" else ("--admin-password", "<the password>")
    extra = list(secret)
    if v["custom_data"]:
        extra += ["--custom-data", "<file with the custom data>"]
    return shlex.join(az + extra), shlex.join(alto + extra)


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def choices(session: PortalSession, sub: str | None) -> dict[str, Any]:
        subs = await data.subscriptions(arm, session.token)
        sub = sub or (subs[0]["subscriptionId"] if subs else None)
        if sub is None:
            return {"subs": [], "groups": [], "images": [], "sizes": []}
        groups, images, sizes = await asyncio.gather(
            data.groups(arm, session.token, sub),
            data.images(arm, session.token, sub),
            data.sizes(arm, session.token, sub),
        )
        return {"subs": subs, "groups": groups, "images": images, "sizes": sizes}

    def defaults(request: Request) -> dict[str, str]:
        v = dict.fromkeys(FIELDS, "")
        v.update(group_mode="new", version="latest", capacity="2", admin_user="azureuser", auth="password",
                 upgrade="Manual", size="Standard_A1")  # fmt: skip
        for key in FIELDS:
            if key in request.query_params:
                v[key] = request.query_params[key]
        return v

    async def form_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        v = defaults(request)
        return portal.render(
            request, "wizard.html", session, v=v, errors={}, modes=UPGRADE_MODES, **await choices(session, None)
        )

    async def submit(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        v = {k: first(form, k).strip() if k not in ("password", "custom_data", "ssh_key") else first(form, k)
             for k in FIELDS}  # fmt: skip
        if v["group_mode"] == "existing":
            v["group"] = first(form, "existing_group")
        errors = local_errors(v)
        step = first(form, "step")
        if not errors and step == "create":
            try:
                await create(session, v)
            except ApiError as err:
                if err.status in (401, 403):
                    raise
                errors[field_of(err.target) or "_form"] = f"{err.code}: {err.message}"
            else:
                path = data.set_path(v["subscription"], v["group"], v["name"])
                session.flash.append(f"Creating {v['name']}: its instances appear below as they start.")
                return secure(RedirectResponse("/portal" + path, 303))
        values = await choices(session, v["subscription"] or None)
        if not errors and step in ("review", "create"):
            body = scale_set_body(v)
            shown = json.loads(json.dumps(body))
            profile = shown["properties"]["virtualMachineProfile"]["osProfile"]
            if "adminPassword" in profile:
                profile["adminPassword"] = "********"
            az, alto = commands(v)
            path = data.set_path(v["subscription"], v["group"], v["name"])
            return portal.render(
                request,
                "wizard_review.html",
                session,
                v=v,
                request_line=f"PUT {path}?api-version={COMPUTE_API}",
                body=json.dumps(shown, indent=2),
                az=az,
                alto=alto,
                fields=FIELDS,
                **values,
            )
        return portal.render(
            request,
            "wizard.html",
            session,
            v=v,
            errors=errors,
            modes=UPGRADE_MODES,
            **values,
            status=400 if errors else 200,
        )

    async def create(session: PortalSession, v: dict[str, str]) -> None:
        """The group (when new), the provider registration, the set. A new group this attempt made is deleted
        again when the set is refused, so a refused Create leaves nothing behind."""
        sub = v["subscription"]
        group_path = f"/subscriptions/{sub}/resourcegroups/{v['group']}"
        made_group = False
        if v["group_mode"] == "new":
            r = await arm.request(session.token, "HEAD", group_path, RESOURCES_API)
            if r.status_code != 204:
                try:
                    await arm.call(session.token, "PUT", group_path, RESOURCES_API, {"location": data.LOCATION})
                except ApiError as err:
                    err.target = "resourceGroupName"
                    raise
                made_group = True
        register = f"/subscriptions/{sub}/providers/Microsoft.Compute/register"
        try:
            await arm.call(session.token, "POST", register, RESOURCES_API)
            path = data.set_path(sub, v["group"], v["name"])
            await arm.call(session.token, "PUT", path, COMPUTE_API, scale_set_body(v))
        except ApiError:
            if made_group:
                await arm.request(session.token, "DELETE", group_path, RESOURCES_API)
            raise

    return [
        ("/portal/create/scale-set", "GET", page(portal, form_page)),
        ("/portal/create/scale-set", "POST", page(portal, submit)),
    ]


def local_errors(v: dict[str, str]) -> dict[str, str]:
    """What the form can say before asking the API (missing fields); everything else is the API's to judge."""
    errors = {}
    for key, label in (("subscription", "a subscription"), ("group", "a resource group"), ("name", "a name"),
                       ("image", "an image"), ("size", "a size"), ("admin_user", "an administrator name")):  # fmt: skip
        if not v[key]:
            errors[key] = f"Choose {label}."
    if v["auth"] == "ssh" and not v["ssh_key"].strip():
        errors["ssh_key"] = "Paste an SSH public key."
    if v["auth"] != "ssh" and not v["password"]:
        errors["password"] = "Enter a password."
    if v["upgrade"] not in UPGRADE_MODES:
        errors["upgrade"] = "Choose an upgrade policy."
    return errors
