"""Odd requests to the network, storage, compute and insights types never answer 500."""

from __future__ import annotations

import itertools

from tests.support.network import NET, OLD_STORAGE, STORAGE, Group, vnet

ODD_BODIES = [
    b"",
    b"[]",
    b"null",
    b'"x"',
    b"{}",
    b'{"location": "local"}',
    b'{"location": "local", "properties": []}',
    b'{"location": "local", "sku": 5, "kind": [], "properties": {"accountType": 7}}',
    b'{"location": "local", "properties": {"subnets": {}, "ipConfigurations": [5], "addressSpace": []}}',
    b'{"location": "local", "properties": {"addressSpace": {"addressPrefixes": [5, null]}, "subnets": [{}]}}',
    b'{"location": "local", "properties": {"ipConfigurations": [{"name": "i", "properties": {"subnet": 5}}]}}',
    b'{"location": "local", "properties": {"dnsSettings": {"domainNameLabel": 5}, "idleTimeoutInMinutes": []}}',
    b'{"location": "local", "properties": {"inboundNatPools": [{"name": "p", "properties": {"backendPort": {}}}]}}',
    b'{"location": "local", "properties": {"storageProfile": {"osDisk": []}, "profiles": [null]}}',
    b'{"location": "local", "properties": {"platformFaultDomainCount": true, "targetResourceUri": 5}}',
    b'{"properties": {"addressPrefix": ["10.0.0.0/24"]}}',
    b'{"properties": {"frontendPort": "x"}}',
]


def test_odd_requests_never_answer_500(group: Group) -> None:
    group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))), 201)
    group.ok(group.put("Microsoft.Network/loadBalancers", "lb", {"location": "local", "properties": {}}), 201)
    urls = [
        f"{group.id(t, 'odd1')}?{v}"
        for t, v in (
            ("Microsoft.Network/virtualNetworks", NET),
            ("Microsoft.Network/publicIPAddresses", NET),
            ("Microsoft.Network/loadBalancers", NET),
            ("Microsoft.Network/networkInterfaces", NET),
            ("Microsoft.Network/networkSecurityGroups", NET),
            ("Microsoft.Storage/storageAccounts", STORAGE),
            ("Microsoft.Storage/storageAccounts", OLD_STORAGE),
            ("Microsoft.Compute/availabilitySets", "api-version=2017-03-30"),
            ("Microsoft.Compute/images", "api-version=2017-12-01"),
            ("Microsoft.Insights/autoscalesettings", "api-version=2015-04-01"),
        )
    ]
    urls += [
        f"{group.id('Microsoft.Network/virtualNetworks', 'vnet')}/subnets/odd?{NET}",
        f"{group.id('Microsoft.Network/loadBalancers', 'lb')}/inboundNatRules/odd?{NET}",
    ]
    for url, content in itertools.product(urls, ODD_BODIES):
        r = group.http.put(url, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (url, content, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["code"], r.text
    for url in urls:
        assert group.http.post(url.replace("?", "/listKeys?")).status_code < 500
        assert group.http.get(url).status_code < 500
