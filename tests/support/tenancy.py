"""Plans, offers, quotas and subscriptions through the REST APIs, as the operator and as tenants."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.server import AltoServer

SUBS_API = "api-version=2015-11-01"
COMPUTE_ADMIN_API = "api-version=2018-02-09"
NETWORK_ADMIN_API = "api-version=2015-06-15"
STORAGE_ADMIN_API = "api-version=2019-08-08-preview"
ADMIN_QUOTA_APIS = {
    "Microsoft.Compute.Admin": COMPUTE_ADMIN_API,
    "Microsoft.Network.Admin": NETWORK_ADMIN_API,
    "Microsoft.Storage.Admin": STORAGE_ADMIN_API,
}


def ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), r.text
    return dict(r.json()) if r.content else {}


class TenancyAdmin:
    """The operator's side: quotas, plans, offers, subscriptions, add-on plans."""

    def __init__(self, server: AltoServer, group: str = "plans") -> None:
        self.server = server
        self.http = server.client("operator")
        self.sub = server.credentials["operator"]["subscriptionId"]
        self.providers = f"/subscriptions/{self.sub}/providers"
        self.rg = f"/subscriptions/{self.sub}/resourceGroups/{group}/providers/Microsoft.Subscriptions.Admin"

    def quota_id(self, namespace: str, name: str) -> str:
        return f"{self.providers}/{namespace}/locations/local/quotas/{name}"

    def quota(self, namespace: str, name: str, **limits: int) -> dict[str, Any]:
        url = f"{self.quota_id(namespace, name)}?{ADMIN_QUOTA_APIS[namespace]}"
        return ok(self.http.put(url, json={"properties": limits}))

    def plan(self, name: str, *quota_ids: str) -> dict[str, Any]:
        body = {"properties": {"displayName": name, "quotaIds": list(quota_ids)}}
        return ok(self.http.put(f"{self.rg}/plans/{name}?{SUBS_API}", json=body))

    def offer(self, name: str, base: list[str], state: str = "Public", **props: Any) -> dict[str, Any]:
        body = {"properties": {"displayName": name, "basePlanIds": [self.plan_id(p) for p in base], "state": state,
                               **props}}  # fmt: skip
        return ok(self.http.put(f"{self.rg}/offers/{name}?{SUBS_API}", json=body))

    def plan_id(self, name: str) -> str:
        return f"{self.rg}/plans/{name}"

    def link(self, offer: str, plan: str, link_type: str = "Addon", count: int = 1) -> dict[str, Any]:
        body = {"planName": plan, "planLinkType": link_type, "maxAcquisitionCount": count}
        return ok(self.http.post(f"{self.rg}/offers/{offer}/link?{SUBS_API}", json=body), 200)

    def subscription_url(self, sub: str) -> str:
        return f"{self.providers}/Microsoft.Subscriptions.Admin/subscriptions/{sub}?{SUBS_API}"

    def set_state(self, sub: str, state: str) -> dict[str, Any]:
        return ok(self.http.put(self.subscription_url(sub), json={"properties": {"state": state}}), 200)

    def acquire(self, sub: str, plan: str) -> httpx.Response:
        url = f"{self.providers}/Microsoft.Subscriptions.Admin/subscriptions/{sub}/acquiredPlans/{uuid.uuid4()}"
        return self.http.put(f"{url}?{SUBS_API}", json={"properties": {"planId": self.plan_id(plan)}})

    def principal(self, display: str = "a tenant") -> dict[str, Any]:
        """A new tenant principal (no subscription yet): ``clientId`` and ``clientSecret``."""
        cid = str(uuid.uuid4())
        r = self.http.put(
            f"{self.providers}/Altostratus.Identity.Admin/principals/{cid}?api-version=2024-01-01",
            json={"properties": {"displayName": display, "role": "tenant"}},
        )
        return {"clientId": cid, "clientSecret": ok(r, 201)["properties"]["clientSecret"]}


def subscribe(server: AltoServer, principal: dict[str, Any], offer: str) -> dict[str, Any]:
    """The tenant gets a subscription from a public offer (user-subscriptions PUT); returns its credentials."""
    sub = str(uuid.uuid4())
    with server.client(creds=principal) as c:
        body = {"displayName": f"{offer} subscription", "offerId": f"/delegatedProviders/default/offers/{offer}"}
        created = ok(c.put(f"/subscriptions/{sub}?{SUBS_API}", json=body), 201)
    assert created["subscriptionId"] == sub and created["state"] == "Enabled"
    return {**principal, "subscriptionId": sub}


def public_offers(server: AltoServer, creds: dict[str, Any]) -> list[str]:
    with server.client(creds=creds) as c:
        return [o["name"] for o in ok(c.get(f"/providers/Microsoft.Subscriptions/offers?{SUBS_API}"), 200)["value"]]
