"""The operator portal: the dashboard and Marketplace management (downloads with live progress, the version
rules shown before they bite, gallery items and platform images). Every call is an admin API call with the
operator's token; a tenant gets the 403 page before any call (and the API would refuse them anyway)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from altostratus.portal import operator_data as od
from altostratus.portal.arm import BRIDGE_API, COMPUTE_ADMIN_API, GALLERY_API, ApiError, error_of
from altostratus.portal.sessions import PortalSession
from altostratus.portal.tenant_data import version_key
from altostratus.portal.web import Portal, first, page, secure

KINDS = ("virtualMachine", "virtualMachineExtension", "galleryItem")


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def admin(session: PortalSession) -> od.Admin:
        return await od.admin_for(arm, session)

    async def dashboard(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        subs, users, downloads, images, controllers = await asyncio.gather(
            a.subscriptions(), a.users(), a.downloads(), a.platform_images(), a.controllers()
        )
        sets = await a.scale_sets(subs)
        states = await a.instance_states(sets)
        progress = [od.download_progress(d) for d in downloads]
        logical = sum(d["properties"].get("virtualSize") or 0 for d in downloads)
        allocated = sum(d["properties"].get("allocatedSize") or 0 for d in downloads)
        return portal.render(
            request,
            "operator_dashboard.html",
            session,
            subs=subs,
            users=users,
            owners={u["properties"]["objectId"]: u["properties"]["userName"] for u in users},
            sets=sets,
            states=states,
            instances=sum(states.get(k, 0) for k in ("running", "stopped", "deallocated", "starting")),
            active=[p for p in progress if p["state"] == "Downloading"],
            images=images,
            logical=logical,
            allocated=allocated,
            controllers=controllers,
        )

    async def marketplace(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        downloads, items, images, sets, extensions = await asyncio.gather(
            a.downloads(), a.gallery_items(), a.platform_images(), a.scale_sets(), a.vm_extensions()
        )
        image_rows = []
        for image in images:
            pub, offer, sku, version = od.image_identity(image)
            pinned = od.pinned_to(sets, pub, offer, sku, version)
            image_rows.append({"urn": f"{pub}:{offer}:{sku}:{version}", "image": image, "pinned": pinned})
        return portal.render(
            request,
            "operator_marketplace.html",
            session,
            downloads=[(d, od.download_progress(d)) for d in downloads],
            items=items,
            images=image_rows,
            extensions=[(od.extension_identity(e), e) for e in extensions],
        )

    async def add_from_azure(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        try:
            products, downloads = await asyncio.gather(a.products(), a.downloads())
        except ApiError as err:
            if err.status != 404:
                raise
            # No activation: nothing to add from until the operator registers (the registration page says how).
            session.flash.append("This cloud is not registered with an upstream marketplace: register it first.")
            return secure(RedirectResponse("/admin/registration", 303))
        q = request.query_params.get("q", "").strip().lower()
        kind = request.query_params.get("kind", "")
        here: dict[tuple[str, str, str], str] = {}
        for d in downloads:
            key = od.product_image(d)
            if key and d["properties"].get("provisioningState") == "Succeeded":
                k = (key[0].lower(), key[1].lower(), key[2].lower())
                if k not in here or version_key(key[3]) > version_key(here[k]):
                    here[k] = key[3]
        downloaded = {d["name"].split("/", 1)[-1]: d["properties"].get("provisioningState") for d in downloads}
        rows = []
        for p in products:
            props = p["properties"]
            name = p["name"].split("/", 1)[-1]
            text = " ".join(str(props.get(k, "")) for k in ("displayName", "publisherDisplayName", "offer", "sku"))
            if q and q not in (name + " " + text).lower():
                continue
            if kind and str(props.get("productKind", "")).lower() != kind.lower():
                continue
            key = od.product_image(p)
            status = downloaded.get(name)
            if status is None and key:
                have = here.get((key[0].lower(), key[1].lower(), key[2].lower()))
                if have and version_key(key[3]) > version_key(have):
                    status = f"Newer than {have} (downloaded)"
            rows.append({"name": name, "p": p, "status": status})
        return portal.render(
            request,
            "operator_add.html",
            session,
            rows=rows,
            q=request.query_params.get("q", ""),
            kind=kind,
            kinds=KINDS,
        )

    async def download(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name = first(form, "product")
        product = await arm.call(session.token, "GET", f"{a.activation}/products/{name}", BRIDGE_API)
        if first(form, "confirmed") != "yes":
            images, sets = await asyncio.gather(a.platform_images(), a.scale_sets())
            replaced = od.replaced_versions(product, images)
            key = od.product_image(product)
            pinned = []
            if key:
                for version in replaced:
                    pinned += [(version, ss) for ss in od.pinned_to(sets, key[0], key[1], key[2], version)]
            if replaced:
                return portal.render(
                    request,
                    "operator_confirm_download.html",
                    session,
                    name=name,
                    product=product,
                    replaced=replaced,
                    pinned=pinned,
                )
        r = await arm.request(session.token, "POST", f"{a.activation}/products/{name}/download", BRIDGE_API)
        if r.status_code >= 400:
            err = error_of(r)
            session.flash.append(f"The download of {name} was refused: {err.message}")
        else:
            session.flash.append(f"Downloading {name}. It continues on the server if you close this page.")
        return secure(RedirectResponse("/admin/marketplace", 303))

    async def cancel_download(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name = first(form, "product")
        try:
            await arm.call(session.token, "DELETE", f"{a.activation}/downloadedProducts/{name}", BRIDGE_API)
            session.flash.append(f"{name} removed.")
        except ApiError as err:
            if err.status in (401, 403):
                raise
            session.flash.append(f"{name} could not be removed: {err.message}")
        return secure(RedirectResponse("/admin/marketplace", 303))

    async def downloads_json(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        return secure(JSONResponse([od.download_progress(d) for d in await a.downloads()]))

    async def remove_item(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name = first(form, "item")
        await arm.call(session.token, "DELETE", f"{a.gallery}/{name}", GALLERY_API)
        session.flash.append(f"Gallery item {name} removed: tenants no longer see it in their marketplace.")
        return secure(RedirectResponse("/admin/marketplace", 303))

    async def delete_image(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        urn = first(form, "urn")
        parts = urn.split(":")
        if len(parts) != 4:
            session.flash.append("Choose an image.")
            return secure(RedirectResponse("/admin/marketplace", 303))
        if first(form, "confirmed") != "yes":
            pinned = od.pinned_to(await a.scale_sets(), *parts)
            return portal.render(request, "operator_confirm_delete.html", session, urn=urn, pinned=pinned)
        pub, offer, sku, version = parts
        path = f"{a.images}/platformImage/publishers/{pub}/offers/{offer}/skus/{sku}/versions/{version}"
        await arm.call(session.token, "DELETE", path, COMPUTE_ADMIN_API)
        session.flash.append(f"Image {urn} deleted.")
        return secure(RedirectResponse("/admin/marketplace", 303))

    async def add_image(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        """A platform image added directly (not through the marketplace): the same resumable, verified download."""
        a = await admin(session)
        parts = [first(form, k).strip() for k in ("publisher", "offer", "sku", "version")]
        uri = first(form, "uri").strip()
        if not all(parts) or not uri:
            session.flash.append("Enter publisher, offer, SKU, version and the disk's path or URL.")
            return secure(RedirectResponse("/admin/marketplace", 303))
        pub, offer, sku, version = parts
        path = f"{a.images}/platformImage/publishers/{pub}/offers/{offer}/skus/{sku}/versions/{version}"
        body = {"properties": {"osDisk": {"osType": first(form, "os_type", "Linux"), "uri": uri}}}
        r = await arm.request(session.token, "PUT", path, COMPUTE_ADMIN_API, body)
        if r.status_code >= 400:
            err = error_of(r)
            if err.status in (401, 403):
                raise err
            session.flash.append(f"The image {':'.join(parts)} was refused: {err.message}")
        else:
            session.flash.append(f"Adding the image {':'.join(parts)}: it appears below once it is copied.")
        return secure(RedirectResponse("/admin/marketplace", 303))

    return [
        ("/admin", "GET", page(portal, dashboard, operator=True)),
        ("/admin/marketplace/add-image", "POST", page(portal, add_image, operator=True)),
        ("/admin/marketplace", "GET", page(portal, marketplace, operator=True)),
        ("/admin/marketplace/add", "GET", page(portal, add_from_azure, operator=True)),
        ("/admin/marketplace/download", "POST", page(portal, download, operator=True)),
        ("/admin/marketplace/remove-download", "POST", page(portal, cancel_download, operator=True)),
        ("/admin/marketplace/downloads.json", "GET", page(portal, downloads_json, operator=True, json=True)),
        ("/admin/marketplace/remove-item", "POST", page(portal, remove_item, operator=True)),
        ("/admin/marketplace/delete-image", "POST", page(portal, delete_image, operator=True)),
    ]
