"""Two requests creating the same new resource at once, on PostgreSQL (where writers run concurrently; SQLite queues
them): both are answered as if one came second - never a 500 from the loser's broken unique key (the fuzz run found
a deployment's PUT of an NSG losing such a race to a tenant's own PUT of it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.server import AltoServer

NET = "api-version=2018-11-01"


@pytest.mark.postgres
def test_concurrent_puts_of_one_new_resource(tmp_path: Path, postgres_url: str) -> None:
    server = AltoServer(tmp_path / "data", postgres_url, extra_args=("--no-portal",)).start()
    try:
        sub = server.credentials["tenant"]["subscriptionId"]
        with server.client() as http:
            r = http.put(f"/subscriptions/{sub}/resourcegroups/race?api-version=2019-10-01", json={"location": "local"})
            assert r.status_code in (200, 201), r.text
        base = f"/subscriptions/{sub}/resourceGroups/race/providers/Microsoft.Network/networkSecurityGroups"
        clients = [server.client() for _ in range(8)]
        try:
            for round_ in range(5):
                urls = [f"{base}/nsg{round_}?{NET}"] * len(clients)
                with ThreadPoolExecutor(len(clients)) as pool:
                    codes = list(pool.map(lambda c, u: c.put(u, json={"location": "local"}).status_code, clients, urls))
                assert set(codes) <= {200, 201}, codes
                assert codes.count(201) >= 1
            listed = clients[0].get(f"{base}?{NET}").json()["value"]
            assert sorted(n["name"] for n in listed) == [f"nsg{i}" for i in range(5)]
        finally:
            for c in clients:
                c.close()
    finally:
        server.close()
