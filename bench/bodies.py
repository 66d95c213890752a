"""Request-body reading: what Json.NET leniency (arm/lenient_json.py) costs the pipeline per body.

The pipeline now parses every JSON body once with the C decoder before the limits (strict bodies pass untouched)
and rewrites the ones strict JSON refuses. Rows, per body, microseconds (best of ``--repeat`` runs of ``--number``
calls, so that a burst of load on the shared machine does not count):

* **json.loads (baseline)**: what a handler's own parse costs; the added check is one more of these;
* **normalise_body, strict**: the same body through the pipeline's step (strict: parsed once, passed on);
* **normalise_body, lenient**: the body as az deployment group create sends it (an unquoted ``template`` name),
  rewritten to strict JSON and parsed again to confirm;
* **check_body**: the limits that ran before this change, for scale.

Bodies: a scale set as az vmss create's template makes it (~1.3 KB) and the 101-vmss-linux-vm deployment (~7.5 KB).

Run:  .venv/bin/python bench/bodies.py [--number 2000] [--repeat 7]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import timeit
from pathlib import Path

from altostratus.arm.body_limits import check_body
from altostratus.arm.lenient_json import normalise_body

ROOT = Path(__file__).resolve().parents[1]


def bodies() -> dict[str, tuple[bytes, bytes]]:
    """name -> (strict body, the lenient spelling az sends)."""
    template = json.loads((ROOT / "tests/arm_templates/public/101-vmss-linux-vm/azuredeploy.json").read_text())
    deployment = json.dumps({"properties": {"mode": "Incremental", "template": template, "parameters": {}}})
    nic = {"name": "nic", "properties": {"primary": "true", "ipConfigurations": [{"name": "ipc", "properties": {}}]}}
    vmss = json.dumps(
        {
            "location": "local",
            "sku": {"name": "Standard_DS1_v2", "capacity": 2},
            "properties": {
                "upgradePolicy": {"mode": "Manual"},
                "virtualMachineProfile": {
                    "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser", "secrets": []},
                    "storageProfile": {
                        "imageReference": {"publisher": "P", "offer": "O", "sku": "S", "version": "latest"}
                    },
                    "networkProfile": {"networkInterfaceConfigurations": [nic] * 8},
                },
            },
        }
    )
    return {
        "scale set": (vmss.encode(), vmss.replace('"properties":', "properties:", 1).encode()),
        "deployment": (deployment.encode(), deployment.replace('"template":', "template:", 1).encode()),
    }


def best(fn: object, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print("| body | size | json.loads (baseline) | normalise_body, strict | normalise_body, lenient | check_body |")
    print("|---|---|---|---|---|---|")
    for name, (strict, lenient) in bodies().items():
        assert normalise_body(strict) is strict and json.loads(normalise_body(lenient)) == json.loads(strict)
        row = [
            best(lambda s=strict: json.loads(s), args.number, args.repeat),
            best(lambda s=strict: normalise_body(s), args.number, args.repeat),
            best(lambda s=lenient: normalise_body(s), max(1, args.number // 10), args.repeat),
            best(lambda s=strict: check_body(s), args.number, args.repeat),
        ]
        print(f"| {name} | {len(strict):,} B | " + " | ".join(f"{us:.1f} µs" for us in row) + " |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
