"""Template deployments: validate and deploy a 400-iteration copy loop, and expression evaluations per second.

``server`` part: ``alto up`` (SQLite in a temporary data dir, ``--log-level warning``). The template is one network
security group resource with ``copy.count = 400`` whose name, tags and rule use the usual expressions
(``concat``, ``padLeft``, ``copyIndex``, ``uniqueString``, ``resourceGroup()``, ``variables()``). Measured, each
``--reps`` times on a fresh resource group, median reported:

* **validate**: ``POST …/deployments/{name}/validate`` (parameters, variables, expansion of the 400 copies,
  dependency graph, resource types and provider preflight), until the 200 answer;
* **deploy**: ``PUT …/deployments/{name}`` then polling its ``Azure-AsyncOperation`` every 50 ms until Succeeded
  (the executor PUTs the 400 resources through the router, 8 at a time, and records 400 deployment operations);
* **redeploy**: the same deployment again (400 PUTs that change nothing), and **what-if** of it (400 GETs + diffs);
* **baseline, direct PUTs**: the same 400 request bodies (evaluated by the bench beforehand) PUT by the client
  itself over HTTPS, 8 requests in flight (the executor's parallelism), into another fresh group.

``deploy / direct`` is the cost of going through a deployment rather than calling the API yourself: lower is
better; 1.0 would mean the template engine, the operation records and the polling cost nothing.

``expressions`` part, in-process (no server): typical VMSS-template expressions evaluated with a prepared
context. "cached" re-evaluates the same texts (the parse cache hits, as when a copy loop evaluates one body 400
times); "cold" clears the parse cache before each evaluation (tokenise + parse + evaluate). Baseline: CPython
``eval`` of the equivalent Python expression, precompiled (cached) or compiled each time (cold).

Run:  .venv/bin/python bench/templates.py [--count 400] [--reps 3] [--seconds 2]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.server import AltoServer  # noqa: E402

from altostratus.templates import EvaluationContext, evaluate, evaluate_expression, prepare  # noqa: E402
from altostratus.templates.expressions import parse  # noqa: E402

API = "api-version=2019-10-01"
NSG_API = "2018-11-01"
PARALLEL = 8


def copy_loop_template(count: int) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "prefix": {"type": "string", "defaultValue": "bench"},
            "count": {"type": "int", "defaultValue": count, "minValue": 1, "maxValue": 800},
        },
        "variables": {
            "suffix": "[uniqueString(resourceGroup().id)]",
            "rule": {
                "name": "ssh",
                "properties": {
                    "protocol": "Tcp",
                    "sourcePortRange": "*",
                    "destinationPortRange": "22",
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "access": "Allow",
                    "priority": 100,
                    "direction": "Inbound",
                },
            },
        },  # fmt: skip
        "resources": [
            {
                "type": "Microsoft.Network/networkSecurityGroups",
                "apiVersion": NSG_API,
                "name": "[concat(parameters('prefix'), '-', padLeft(string(copyIndex()), 3, '0'))]",
                "location": "[resourceGroup().location]",
                "copy": {"name": "nsgs", "count": "[parameters('count')]"},
                "tags": {"index": "[string(copyIndex(1))]", "suffix": "[variables('suffix')]"},
                "properties": {"securityRules": ["[variables('rule')]"]},
            }
        ],
        "outputs": {
            "last": {"type": "string", "value": "[concat(parameters('prefix'), '-', string(parameters('count')))]"}
        },
    }


# ------------------------------------------------------------------------------------------------ server part


class Cloud:
    def __init__(self, server: AltoServer) -> None:
        self.server = server
        self.http = server.client()
        self.sub = server.credentials["tenant"]["subscriptionId"]

    def group(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        r = self.http.put(f"/subscriptions/{self.sub}/resourcegroups/{name}?{API}", json={"location": "local"})
        r.raise_for_status()
        return name

    def deployments(self, group: str, name: str) -> str:
        return f"/subscriptions/{self.sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/{name}"

    def validate(self, group: str, body: dict[str, Any]) -> float:
        start = time.perf_counter()
        r = self.http.post(f"{self.deployments(group, 'bench')}/validate?{API}", json=body, timeout=600)
        elapsed = time.perf_counter() - start
        assert r.status_code == 200, r.text
        return elapsed

    def deploy(self, group: str, body: dict[str, Any]) -> float:
        start = time.perf_counter()
        r = self.http.put(f"{self.deployments(group, 'bench')}?{API}", json=body, timeout=600)
        assert r.status_code in (200, 201), r.text
        status_url = r.headers["Azure-AsyncOperation"]
        while True:
            status = self.http.get(status_url).json()["status"]
            if status not in ("Accepted", "Running"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        assert status == "Succeeded", self.http.get(f"{self.deployments(group, 'bench')}?{API}").text
        return elapsed

    def what_if(self, group: str, body: dict[str, Any]) -> float:
        start = time.perf_counter()
        r = self.http.post(f"{self.deployments(group, 'bench')}/whatIf?{API}", json=body, timeout=600)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        while (r := self.http.get(location)).status_code == 202:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        assert r.json()["status"] == "Succeeded", r.text
        return elapsed

    def direct(self, group: str, bodies: list[tuple[str, dict[str, Any]]]) -> float:
        base = f"/subscriptions/{self.sub}/resourceGroups/{group}/providers/Microsoft.Network/networkSecurityGroups"
        clients = [self.server.client() for _ in range(PARALLEL)]

        def put(i: int) -> None:
            name, body = bodies[i]
            r = clients[i % PARALLEL].put(f"{base}/{name}?api-version={NSG_API}", json=body)
            assert r.status_code in (200, 201), r.text

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(put, range(len(bodies))))
        elapsed = time.perf_counter() - start
        for c in clients:
            c.close()
        return elapsed


def direct_bodies(template: dict[str, Any], group: str, sub: str) -> list[tuple[str, dict[str, Any]]]:
    """The request bodies the deployment sends, evaluated here so the baseline does the same PUTs."""
    ctx = prepare(
        template,
        {},
        EvaluationContext(subscription_id=sub, resource_group=group, resource_group_location="local"),
    )
    (resource,) = template["resources"]
    count = int(template["parameters"]["count"]["defaultValue"])
    out = []
    for i in range(count):
        item = evaluate(
            {k: v for k, v in resource.items() if k not in ("type", "apiVersion", "copy")},
            ctx.derive(copy_indexes={"nsgs": i, "": i}),
        )
        out.append((item.pop("name"), item))
    return out


def server_part(args: argparse.Namespace) -> dict[str, list[float]]:
    template = copy_loop_template(args.count)
    body = {"properties": {"mode": "Incremental", "template": template, "parameters": {}}}
    times: dict[str, list[float]] = {k: [] for k in ("validate", "deploy", "redeploy", "what-if", "direct")}
    with tempfile.TemporaryDirectory(prefix="alto-bench-templates-") as tmp:
        server = AltoServer(Path(tmp) / "data", extra_args=("--log-level", "warning")).start()
        try:
            cloud = Cloud(server)
            cloud.deploy(cloud.group(), {"properties": {**body["properties"], "parameters": {"count": {"value": 5}}}})
            for rep in range(args.reps):
                group = cloud.group()
                times["validate"].append(cloud.validate(group, body))
                times["deploy"].append(cloud.deploy(group, body))
                times["redeploy"].append(cloud.deploy(group, body))
                times["what-if"].append(cloud.what_if(group, body))
                other = cloud.group()
                times["direct"].append(cloud.direct(other, direct_bodies(template, other, cloud.sub)))
                print(f"  rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        finally:
            server.close()
    return times


# ------------------------------------------------------------------------------------------- expressions part

EXPRESSIONS: list[tuple[str, str]] = [
    (
        "[toLower(substring(concat(parameters('vmssName'), uniqueString(resourceGroup().id)), 0, 9))]",
        "(vmss_name + unique_string(rg_id))[0:9].lower()",
    ),
    (
        "[concat(parameters('prefix'), '-nsg', padLeft(string(parameters('index')), 3, '0'))]",
        "prefix + '-nsg' + str(index).rjust(3, '0')",
    ),
    (
        "[resourceId('Microsoft.Network/loadBalancers/inboundNatPools', variables('lbName'), 'natpool')]",
        "'/subscriptions/' + sub + '/resourceGroups/' + rg + "
        "'/providers/Microsoft.Network/loadBalancers/' + lb_name + '/inboundNatPools/natpool'",
    ),
    (
        "[if(equals(parameters('authenticationType'), 'password'), json('null'), variables('linuxConfiguration'))]",
        "None if auth_type == 'password' else linux_configuration",
    ),
    (
        "[base64(concat('#cloud-config\nhostname: ', parameters('vmssName')))]",
        "b64(('#cloud-config\\nhostname: ' + vmss_name).encode()).decode()",
    ),
    (
        "[add(mul(2, length(parameters('zones'))), div(10, 3))]",
        "2 * len(zones) + 10 // 3",
    ),
]


def expression_context() -> EvaluationContext:
    template = {
        "parameters": {
            "vmssName": {"type": "string", "defaultValue": "webscaleset"},
            "prefix": {"type": "string", "defaultValue": "web"},
            "index": {"type": "int", "defaultValue": 7},
            "authenticationType": {"type": "string", "defaultValue": "sshPublicKey"},
            "zones": {"type": "array", "defaultValue": ["1", "2", "3"]},
        },
        "variables": {
            "lbName": "web-lb",
            "linuxConfiguration": {"disablePasswordAuthentication": True},
        },
        "resources": [],
    }
    base = EvaluationContext(
        subscription_id="00000000-0000-0000-0000-000000000000", resource_group="bench", resource_group_location="local"
    )
    return prepare(template, {}, base)


def python_namespace() -> dict[str, Any]:
    return {
        "vmss_name": "webscaleset",
        "prefix": "web",
        "index": 7,
        "auth_type": "sshPublicKey",
        "zones": ["1", "2", "3"],
        "lb_name": "web-lb",
        "linux_configuration": {"disablePasswordAuthentication": True},
        "sub": "00000000-0000-0000-0000-000000000000",
        "rg": "bench",
        "rg_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench",
        "unique_string": lambda s: format(abs(hash(s)) % (1 << 64), "013x"),
        "b64": base64.b64encode,
    }


def rate(fn: Callable[[int], None], seconds: float) -> float:
    """Evaluations per second of ``fn(i)`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn(n)
            n += 1
    return n / elapsed


def expressions_part(args: argparse.Namespace) -> dict[str, float]:
    ctx = expression_context()
    texts = [e for e, _ in EXPRESSIONS]
    for text in texts:  # every expression must evaluate before it is timed
        evaluate_expression(text, ctx)
    namespace = python_namespace()
    sources = [p for _, p in EXPRESSIONS]
    compiled = [compile(s, "<bench>", "eval") for s in sources]
    for code in compiled:
        eval(code, namespace)  # noqa: S307 - the baseline is CPython's own evaluator

    def ours_cached(i: int) -> None:
        evaluate_expression(texts[i % len(texts)], ctx)

    def ours_cold(i: int) -> None:
        parse.cache_clear()
        evaluate_expression(texts[i % len(texts)], ctx)

    def python_cached(i: int) -> None:
        eval(compiled[i % len(compiled)], namespace)  # noqa: S307

    def python_cold(i: int) -> None:
        eval(compile(sources[i % len(sources)], "<bench>", "eval"), namespace)  # noqa: S307

    return {
        "ours cached": rate(ours_cached, args.seconds),
        "python cached": rate(python_cached, args.seconds),
        "ours cold": rate(ours_cold, args.seconds),
        "python cold": rate(python_cold, args.seconds),
    }


# --------------------------------------------------------------------------------------------------- report


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=400, help="copy-loop iterations (default 400)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the server part (default 3)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per expression measurement")
    parser.add_argument("--no-server", action="store_true", help="only the in-process expression part")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}; {os.cpu_count()} CPUs", flush=True)

    rates = expressions_part(args)
    print("\nExpression evaluations per second (6 typical VMSS-template expressions, round robin)")
    print(f"{'mode':<8} {'ours /s':>12} {'CPython eval /s':>16} {'ours/CPython':>13}")
    for mode in ("cached", "cold"):
        ours, base = rates[f"ours {mode}"], rates[f"python {mode}"]
        print(f"{mode:<8} {ours:>12,.0f} {base:>16,.0f} {ours / base:>13.3f}")

    if args.no_server:
        return
    print(f"\nServer: copy loop of {args.count} network security groups, {args.reps} reps (median)", flush=True)
    times = server_part(args)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{'step':<10} {'median s':>9} {'resources/s':>12} {'vs direct PUTs':>15}")
    for step in ("validate", "deploy", "redeploy", "what-if", "direct"):
        ratio = med[step] / med["direct"]
        print(f"{step:<10} {med[step]:>9.2f} {args.count / med[step]:>12.0f} {ratio:>15.2f}")
    print(f"\nload average after: {loadavg()}")
    print(json.dumps({"median_seconds": med, "expressions_per_second": rates}))


if __name__ == "__main__":
    main()
