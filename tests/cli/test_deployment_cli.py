"""`alto deployment group ...` as a user runs it: the real CLI process against a live server.

Templates use network security groups (a plain type that deploys at once) so that every command's output can be
checked exactly; the input parsing (parameters files, overrides, line numbers) is also checked on its own.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from altostratus.cli.deployment_input import (
    InputError,
    default_name,
    load_template,
    merge_parameters,
)
from altostratus.cli.deployment_view import OperationsView, error_lines, human_duration
from altostratus.cli.whatif_view import render
from tests.support.names import unique
from tests.support.server import ALTO, AltoServer

TEMPLATES = Path(__file__).parent.with_name("arm_templates")
NSG = "Microsoft.Network/networkSecurityGroups"

# A template as people write them: byte-order mark, comments, trailing commas; outputs of three types.
TEMPLATE = """\ufeff{
  // network security groups from a list
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  /* three parameters:
     names from the parameters file, env overridden on the command line, count from name=value */
  "parameters": {
    "names": { "type": "array" },
    "env": { "type": "string", "defaultValue": "dev" },
    "count": { "type": "int", "defaultValue": 1 },
  },
  "resources": [
    {
      "type": "Microsoft.Network/networkSecurityGroups",
      "apiVersion": "2018-11-01",
      "name": "[parameters('names')[copyIndex()]]",
      "location": "[resourceGroup().location]",
      "tags": { "env": "[parameters('env')]" },
      "copy": { "name": "nsgs", "count": "[length(parameters('names'))]" },
      "properties": {},
    },
  ],
  "outputs": {
    "env": { "type": "string", "value": "[parameters('env')]" },
    "count": { "type": "int", "value": "[parameters('count')]" },
    "first": {
      "type": "string",
      "value": "[resourceId('Microsoft.Network/networkSecurityGroups', parameters('names')[0])]"
    },
  },
}
"""

PARAMETERS_FILE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"names": {"value": ["alpha", "beta"]}, "env": {"value": "test"}},
}

# Fails at run time: NSGs have no listKeys action; 'after' depends on the failing one and never starts.
FAILING = """{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    { "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "name": "fine",
      "location": "local", "properties": {} },
    { "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "name": "broken",
      "location": "local",
      "properties": { "k": "[listKeys('fine', '2018-11-01').keys[0].value]" } },
    { "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "name": "after",
      "location": "local", "dependsOn": ["broken"], "properties": {} }
  ]
}
"""


def run(server: AltoServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALTO, "deployment", "group", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


def ok(out: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


def failed(out: subprocess.CompletedProcess[str], code: int = 1) -> subprocess.CompletedProcess[str]:
    assert out.returncode == code, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


@pytest.fixture
def group(server: AltoServer) -> Iterator[str]:
    name = unique("depcli")
    with server.client() as http:
        assert http.put(f"{group_path(server, name)}?api-version=2019-10-01", json={"location": "local"}).is_success
    yield name


@pytest.fixture
def http(server: AltoServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def group_path(server: AltoServer, group: str) -> str:
    return f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourcegroups/{group}"


def nsg_names(http: httpx.Client, server: AltoServer, group: str) -> list[str]:
    r = http.get(f"{group_path(server, group)}/providers/{NSG}?api-version=2018-11-01")
    assert r.status_code == 200, r.text
    return sorted(n["name"] for n in r.json()["value"])


def test_create_show_list_operations_delete(server: AltoServer, group: str, http: httpx.Client, tmp_path: Path) -> None:
    template = tmp_path / "network.json"
    template.write_bytes(TEMPLATE.encode("utf-8"))
    assert template.read_bytes().startswith(b"\xef\xbb\xbf")
    params = tmp_path / "params.json"
    params.write_text(json.dumps(PARAMETERS_FILE))

    out = ok(run(server, "create", "-g", group, "-f", str(template), "-p", f"@{params}", "env=prod", "count=3"))
    assert "Deployment 'network': Succeeded" in out.stdout, "the default name is the template file's base name"
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") >= 3}
    assert "prod" in rows["env"] and "String" in rows["env"]
    assert "3" in rows["count"] and "Int" in rows["count"]
    assert rows["first"].split("│")[3].strip() == f"{group_path(server, group)}/providers/{NSG}/alpha".replace(
        "resourcegroups", "resourceGroups"
    )
    # Progress: one line per operation state change (stderr is not a terminal here).
    assert "Deploying 'network'" in out.stderr
    for nsg in ("alpha", "beta"):
        assert any(line.split()[:3] == ["Succeeded", "Create", f"{NSG}/{nsg}"] for line in out.stderr.splitlines())

    tags = http.get(f"{group_path(server, group)}/providers/{NSG}/alpha?api-version=2018-11-01").json()["tags"]
    assert tags == {"env": "prod"}, "name=value overrides the parameters file"

    shown = json.loads(ok(run(server, "show", "-g", group, "-n", "network")).stdout)
    props = shown["properties"]
    assert props["provisioningState"] == "Succeeded" and props["mode"] == "Incremental"
    assert props["parameters"]["names"]["value"] == ["alpha", "beta"]
    assert props["parameters"]["count"] == {"type": "Int", "value": 3}
    table = ok(run(server, "show", "-g", group, "-n", "network", "-o", "table")).stdout
    assert "network" in table and "Succeeded" in table and "Incremental" in table and "prod" in table

    # -o json prints the deployment; a second deployment of the same template under another name.
    again = ok(
        run(server, "create", "-g", group, "-f", str(template), "-p", f"@{params}", "-n", "second", "-o", "json")
    )
    assert json.loads(again.stdout)["properties"]["outputs"]["env"] == {"type": "String", "value": "test"}

    listed = json.loads(ok(run(server, "list", "-g", group, "-o", "json")).stdout)
    assert [d["name"] for d in listed] == ["second", "network"], "newest first"
    table = ok(run(server, "list", "-g", group)).stdout
    header = next(line for line in table.splitlines() if "Name" in line)
    assert [h.strip() for h in header.split("┃")[1:-1]] == ["Name", "State", "Timestamp", "Duration", "Mode"]
    assert "network" in table and "second" in table and "Succeeded" in table
    assert json.loads(ok(run(server, "list", "-g", group, "--state", "Failed", "-o", "json")).stdout) == []

    ops = json.loads(ok(run(server, "list-operations", "-g", group, "-n", "network", "-o", "json")).stdout)
    assert sorted(o["properties"]["targetResource"]["resourceName"] for o in ops) == ["alpha", "beta"]
    table = ok(run(server, "list-operations", "-g", group, "-n", "network")).stdout
    assert f"{NSG}/alpha" in table and "Create" in table and "Created" in table and "Succeeded" in table

    exported = json.loads(ok(run(server, "export", "-g", group, "-n", "network")).stdout)
    assert exported["parameters"]["count"] == {"type": "int", "defaultValue": 1}

    out = ok(run(server, "delete", "-g", group, "-n", "network"))
    assert "Deleted deployment 'network'" in out.stdout and "its resources stay" in out.stdout
    out = failed(run(server, "show", "-g", group, "-n", "network"))
    assert "DeploymentNotFound" in out.stderr
    assert "nothing to delete" in ok(run(server, "delete", "-g", group, "-n", "network")).stdout
    assert nsg_names(http, server, group) == ["alpha", "beta"], "deleting history leaves the resources"


def test_validate_reports_errors_with_the_files_line_numbers(server: AltoServer, group: str, tmp_path: Path) -> None:
    # Three comment lines on top: the expression error is on line 14 of this file (line 11 of the original).
    original = (TEMPLATES / "malformed_expression.json").read_text()
    broken = tmp_path / "broken.json"
    broken.write_text("// one\n// two\n/* three */\n" + original)
    line = next(i for i, t in enumerate(broken.read_text().splitlines(), 1) if '"name": "[concat(' in t)
    assert line == 14
    out = failed(run(server, "validate", "-g", group, "-f", str(broken)))
    assert "The template is not valid." in out.stderr
    assert "InvalidTemplate: Deployment template validation failed" in out.stderr
    assert f"at line {line}, column " in out.stderr and "(resources[0].name)" in out.stderr
    # create refuses it the same way and records nothing
    out = failed(run(server, "create", "-g", group, "-f", str(broken)))
    assert "InvalidTemplate" in out.stderr and f"at line {line}," in out.stderr
    assert json.loads(ok(run(server, "list", "-g", group, "-o", "json")).stdout) == []

    template = tmp_path / "network.json"
    template.write_text(TEMPLATE)
    out = failed(run(server, "validate", "-g", group, "-f", str(template)))
    assert "'names'" in out.stderr and "not provided" in out.stderr
    out = ok(run(server, "validate", "-g", group, "-f", str(template), "-p", 'names=["a","b"]'))
    assert "The template is valid: 2 resource(s) validated." in out.stdout
    assert f"{NSG}/a" in out.stdout and "2018-11-01" in out.stdout
    result = json.loads(
        ok(run(server, "validate", "-g", group, "-f", str(template), "-p", "names=[]", "-o", "json")).stdout
    )
    assert result["properties"]["provisioningState"] == "Succeeded" and result["properties"]["validatedResources"] == []


def test_failed_deployment_shows_the_resource_errors(
    server: AltoServer, group: str, http: httpx.Client, tmp_path: Path
) -> None:
    template = tmp_path / "failing.json"
    template.write_text(FAILING)
    out = failed(run(server, "create", "-g", group, "-f", str(template)))
    err = out.stderr
    assert "Deployment 'failing' failed." in err
    assert "DeploymentFailed: At least one resource deployment operation failed" in err
    assert "does not support the action 'listKeys'" in err
    assert "at line 9, column " in err and "(resources[1].properties.k)" in err, "the position in the file"
    assert f"{NSG}/broken (BadRequest): InvalidTemplate" in err
    assert f"alto deployment group list-operations -g {group} -n failing" in err
    assert any(line.split()[:3] == ["Failed", "Create", f"{NSG}/broken"] for line in err.splitlines())

    table = ok(run(server, "list-operations", "-g", group, "-n", "failing")).stdout
    broken_row = next(line for line in table.splitlines() if f"{NSG}/broken" in line)
    assert "Failed" in broken_row and "BadRequest" in broken_row and "InvalidTemplate" in broken_row
    assert f"{NSG}/after" not in table, "what depends on a failure never starts"
    assert [
        d["name"] for d in json.loads(ok(run(server, "list", "-g", group, "--state", "Failed", "-o", "json")).stdout)
    ] == ["failing"]
    shown = ok(run(server, "show", "-g", group, "-n", "failing", "-o", "table")).stdout
    assert "Failed" in shown and "DeploymentFailed" in shown
    out = failed(run(server, "cancel", "-g", group, "-n", "failing"))
    assert "DeploymentCannotBeCancelled" in out.stderr
    assert nsg_names(http, server, group) == ["fine"]


def test_no_wait(server: AltoServer, group: str, tmp_path: Path) -> None:
    template = tmp_path / "network.json"
    template.write_text(TEMPLATE)
    out = ok(run(server, "create", "-g", group, "-f", str(template), "-p", 'names=["nw"]', "-n", "later", "--no-wait"))
    assert (
        "Deployment 'later' accepted" in out.stdout and f"alto deployment group show -g {group} -n later" in out.stdout
    )
    assert "Deploying" not in out.stderr, "nothing is followed"
    deadline = time.time() + 60
    while True:
        state = json.loads(ok(run(server, "show", "-g", group, "-n", "later")).stdout)["properties"][
            "provisioningState"
        ]
        if state == "Succeeded" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert state == "Succeeded"
    out = ok(run(server, "delete", "-g", group, "-n", "later", "--no-wait"))
    assert "Deletion of deployment 'later' accepted." in out.stdout


def test_what_if_before_and_after_a_deployment(
    server: AltoServer, group: str, http: httpx.Client, tmp_path: Path
) -> None:
    template = tmp_path / "rules.json"
    template.write_text("// rules\n" + (TEMPLATES / "nsg_rules.json").read_text())

    def what_if(*args: str) -> subprocess.CompletedProcess[str]:
        return run(server, "what-if", "-g", group, "-f", str(template), *args)

    out = ok(what_if("-p", 'names=["web","db"]')).stdout
    assert "Resource and property changes are indicated with these symbols:" in out and "  + Create" in out
    assert f"Scope: {group_path(server, group)}".replace("resourcegroups", "resourceGroups") in out
    assert f"  + {NSG}/web [2018-11-01]" in out and f"  + {NSG}/db [2018-11-01]" in out
    assert 'properties.access:                   "Allow"' in out, "the full payload of a resource to create"
    assert out.rstrip().endswith("Resource changes: 2 to create.")
    assert nsg_names(http, server, group) == [], "what-if changes nothing"

    ok(run(server, "create", "-g", group, "-f", str(template), "-p", 'names=["web","db"]'))

    out = ok(what_if("-p", 'names=["web","db"]')).stdout
    assert f"  = {NSG}/db" in out and f"  = {NSG}/web" in out
    assert out.rstrip().endswith("Resource changes: 2 no change.")

    out = ok(what_if("-p", 'names=["web","api"]', "access=Deny")).stdout
    lines = [line.rstrip() for line in out.splitlines()]
    at = next(i for i, line in enumerate(lines) if line.startswith(f"  ~ {NSG}/web"))
    assert lines[at + 1 : at + 5] == [
        "    ~ properties.securityRules: [",
        "      ~ 0:",
        '        ~ properties.access: "Allow" => "Deny"',
        "      ]",
    ]
    assert f"  + {NSG}/api [2018-11-01]" in lines and f"  * {NSG}/db" in lines
    assert lines[-1] == "Resource changes: 1 to create, 1 to modify, 1 to ignore."

    result = json.loads(ok(what_if("-p", 'names=["web","api"]', "access=Deny", "-o", "json")).stdout)
    kinds = {c["resourceId"].rsplit("/", 1)[1]: c["changeType"] for c in result["properties"]["changes"]}
    assert result["status"] == "Succeeded" and kinds == {"web": "Modify", "api": "Create", "db": "Ignore"}

    out = ok(what_if("-p", 'names=["web"]', "--mode", "Complete", "-x", "NoChange")).stdout
    assert f"  - {NSG}/db" in out and f"{NSG}/web" not in out
    assert out.rstrip().endswith("Resource changes: 1 to delete.")
    out = ok(what_if("-p", 'names=["web","new"]', "-r", "ResourceIdOnly", "-x", "NoChange", "Ignore")).stdout
    assert f"  ! {NSG}/web" in out and f"  + {NSG}/new" in out and f"{NSG}/db" not in out
    assert out.rstrip().endswith("Resource changes: 1 to create, 1 to deploy.")

    out = failed(what_if("-p", 'names=["web"]', "access=Maybe"))
    assert "What-if failed." in out.stderr and "InvalidTemplate" in out.stderr and "allowed value(s)" in out.stderr
    out = failed(what_if("-p", 'names=["web"]', "-x", "Sometimes"), 2)
    assert "Sometimes" in out.stderr
    assert nsg_names(http, server, group) == ["db", "web"]
    web = http.get(f"{group_path(server, group)}/providers/{NSG}/web?api-version=2018-11-01").json()
    assert web["properties"]["securityRules"][0]["properties"]["access"] == "Allow"


def test_command_line_mistakes_exit_2_with_a_reason(server: AltoServer, group: str, tmp_path: Path) -> None:
    out = failed(run(server, "create", "-g", group, "-f", str(tmp_path / "missing.json")), 2)
    assert "Cannot read the template file" in out.stderr
    out = failed(run(server, "create", "-g", group), 2)
    assert "exactly one of --template-file and --template-uri" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "resources": [\n    {"name": }\n  ]\n}\n')
    out = failed(run(server, "validate", "-g", group, "-f", str(bad)), 2)
    assert "'" + str(bad) + "' is not valid JSON" in out.stderr.replace("\n", "") and "line 3" in out.stderr
    template = tmp_path / "network.json"
    template.write_text(TEMPLATE)
    out = failed(run(server, "create", "-g", group, "-f", str(template), "-p", "justaword"), 2)
    assert "use @file.json, a JSON object, or name=value" in out.stderr
    out = failed(run(server, "create", "-g", group, "-f", str(template), "stray"), 2)
    assert "unexpected argument" in out.stderr
    out = failed(run(server, "create", "-g", "no-such-group", "-f", str(template), "-p", "names=[]"))
    assert "ResourceGroupNotFound" in out.stderr


# ------------------------------------------------------------------------------- input parsing, no server


def test_parameters_merge_like_az(tmp_path: Path) -> None:
    full = tmp_path / "full.json"
    full.write_text("// a parameters file\n" + json.dumps(PARAMETERS_FILE))
    bare_wrapped = tmp_path / "wrapped.json"
    bare_wrapped.write_text(json.dumps({"names": {"value": ["w"]}}))
    bare_values = tmp_path / "values.json"
    bare_values.write_text(json.dumps({"names": ["v"], "settings": {"a": 1}}))

    assert merge_parameters([f"@{full}"]) == {"names": {"value": ["alpha", "beta"]}, "env": {"value": "test"}}
    assert merge_parameters([f"@{bare_wrapped}"]) == {"names": {"value": ["w"]}}
    assert merge_parameters([f"@{bare_values}"]) == {"names": {"value": ["v"]}, "settings": {"value": {"a": 1}}}
    assert merge_parameters([str(bare_wrapped)]) == {"names": {"value": ["w"]}}, "a path without @ also works"
    assert merge_parameters(['{"count": {"value": 2}}', '{"flag": true}']) == {
        "count": {"value": 2},
        "flag": {"value": True},
    }
    parsed = merge_parameters(["n=3", "b=true", "s=web", "l=[1,2]", 'o={"k": 1}', "e=", "q=a=b"])
    assert {k: v["value"] for k, v in parsed.items()} == {
        "n": 3, "b": True, "s": "web", "l": [1, 2], "o": {"k": 1}, "e": "", "q": "a=b",
    }  # fmt: skip
    # later wins, whatever the casing; the later spelling is kept
    assert merge_parameters([f"@{full}", "ENV=prod", "names=[]"]) == {"ENV": {"value": "prod"}, "names": {"value": []}}
    key_vault = {"secret": {"reference": {"keyVault": {"id": "/x"}, "secretName": "s"}}}
    assert merge_parameters([json.dumps(key_vault)]) == key_vault, "references go to the server as they are"

    for arg, message in [
        ("word", "use @file.json"),
        ("@" + str(tmp_path / "none.json"), "Cannot read the parameters file"),
        ("{broken", "not valid JSON"),
        ("[1, 2]", "use @file.json"),
        ('{"a": 1', "not valid JSON"),
    ]:
        with pytest.raises(InputError, match=message):
            merge_parameters([arg])
    listing = tmp_path / "list.json"
    listing.write_text("[1]")
    with pytest.raises(InputError, match="must be a JSON object of parameters"):
        merge_parameters([f"@{listing}"])


def test_template_text_keeps_the_files_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(TEMPLATE.encode("utf-8"))
    source = load_template(path, None)
    body = '{"properties": ' + source.properties_text("Incremental", {"names": {"value": ["x"]}}) + "}"
    parsed = json.loads(body)  # strict JSON: comments, BOM and trailing commas are gone
    assert parsed["properties"]["mode"] == "Incremental" and parsed["properties"]["parameters"]["names"]
    assert parsed["properties"]["template"]["outputs"]["count"]["type"] == "int"
    file_lines, body_lines = TEMPLATE.splitlines(), body.splitlines()
    assert len(body_lines) == len(file_lines)
    for number, text in enumerate(file_lines[1:], 2):
        if '"name": "[parameters' in text:
            assert body_lines[number - 1] == text, "the same line number in the body as in the file"

    linked = load_template(None, "https://example.com/t.json")
    assert json.loads(linked.properties_text("Complete", {}))["templateLink"] == {"uri": "https://example.com/t.json"}
    with pytest.raises(InputError, match="http:// or https://"):
        load_template(None, "ftp://example.com/t.json")
    multi = tmp_path / "multi.json"
    multi.write_text('{"resources": [], "variables": {"s": "line one\nline two"}}')
    text = load_template(multi, None).text
    assert text is not None and json.loads(text)["variables"]["s"] == "line one\nline two", "sent in strict JSON"

    assert default_name(path, None) == "t"
    assert default_name(Path("azuredeploy.json"), None) == "azuredeploy"
    assert default_name(None, "https://example.com/x/main.template.json?sig=1") == "main.template"
    assert default_name(Path("my template!.json"), None) == "my-template"
    assert default_name(Path("!!!.json"), None) == "deployment"


def test_error_lines_and_durations() -> None:
    error: dict[str, Any] = {
        "code": "DeploymentFailed",
        "message": "At least one resource deployment operation failed.",
        "details": [
            {
                "code": "InvalidTemplate",
                "message": "bad expression",
                "target": "/subscriptions/s/x",
                "additionalInfo": [
                    {"type": "TemplateViolation", "info": {"lineNumber": 7, "linePosition": 3, "path": "resources[1]"}}
                ],
            }
        ],
    }
    assert error_lines(error) == [
        "DeploymentFailed: At least one resource deployment operation failed.",
        "  - InvalidTemplate: bad expression",
        "    target: /subscriptions/s/x",
        "    at line 7, column 3 (resources[1])",
    ]
    assert human_duration("PT0.036212S") == "0.04s"
    assert human_duration("PT12.5S") == "12.5s"
    assert human_duration("PT1M2.345S") == "1m 2.3s"
    assert human_duration("PT2H0M5S") == "2h 0m 5.0s"
    assert human_duration("P1DT1H") == "25h 0m 0.0s"
    assert human_duration(None) == "" and human_duration("soon") == ""


def test_template_uri(server: AltoServer, group: str, tmp_path: Path) -> None:
    (tmp_path / "linked.json").write_text(TEMPLATE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}/linked.json"
        out = ok(run(server, "create", "-g", group, "-u", uri, "-p", 'names=["linked1"]', "-o", "json"))
        dep = json.loads(out.stdout)
        assert dep["name"] == "linked", "the default name is the URL's file name"
        assert dep["properties"]["templateLink"]["uri"] == uri
        assert dep["properties"]["outputs"]["env"]["value"] == "dev"
        out = failed(run(server, "validate", "-g", group, "-u", uri.replace("linked", "absent")))
        assert "InvalidContentLink" in out.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_live_view_on_a_terminal() -> None:
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=120)
    view = OperationsView(terminal, "web")
    op = {
        "operationId": "A1",
        "properties": {
            "provisioningOperation": "Create",
            "provisioningState": "Running",
            "duration": "PT1.5S",
            "targetResource": {"resourceType": NSG, "resourceName": "front"},
        },
    }
    with view:
        view.update("Running", [op])
        terminal.print(view.render())
    text = buffer.getvalue()
    assert "Deployment 'web': " in text and "0/1 operations done" in text
    assert f"{NSG}/front" in text and "Create" in text and "1.50s" in text


def test_what_if_rendering_of_every_change_kind() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    rid = "/subscriptions/s/resourceGroups/g/providers/Contoso.Things/things/"
    render(
        console,
        [
            {
                "resourceId": rid + "a",
                "changeType": "Modify",
                "delta": [
                    {"path": "tags.new", "propertyChangeType": "Create", "after": "x"},
                    {"path": "tags.old", "propertyChangeType": "Delete", "before": "y"},
                    {"path": "properties.size", "propertyChangeType": "NoEffect", "before": 2},
                    {
                        "path": "properties.list",
                        "propertyChangeType": "Array",
                        "children": [{"path": "1", "propertyChangeType": "Create", "after": {"k": 1}}],
                    },
                ],
            },
            {"resourceId": rid + "b", "changeType": "Unsupported", "unsupportedReason": "Not evaluated."},
            {"resourceId": rid + "c", "changeType": "NoEffect"},
        ],
    )
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    assert lines[:4] == [
        "Resource and property changes are indicated with these symbols:",
        "  ~ Modify",
        "  x NoEffect",
        "  ? Unsupported",
    ]
    at = lines.index("  ~ Contoso.Things/things/a")
    assert lines[at + 1 : at + 7] == [
        '    + tags.new: "x"',
        '    - tags.old: "y"',
        "    x properties.size: 2",
        "    ~ properties.list: [",
        '      + 1: {"k": 1}',
        "      ]",
    ]
    assert "  ? Contoso.Things/things/b" in lines and "      Not evaluated." in lines
    assert lines[-1] == "Resource changes: 1 to modify, 1 no effect, 1 unsupported."
    buffer.seek(0)
    buffer.truncate()
    render(console, [])
    assert buffer.getvalue().strip() == "No resource changes to show."


def test_linked_templates_by_relative_path_from_local_files(
    server: AltoServer, group: str, http: httpx.Client, tmp_path: Path
) -> None:
    """relativePath links next to a local --template-file are read by the CLI and sent inline (inner scope)."""
    source = Path(__file__).parent.with_name("arm_templates")
    folder = tmp_path / "relative"
    shutil.copytree(source / "relative", folder)
    shutil.copy(source / "linked_nsg.json", tmp_path / "linked_nsg.json")
    out = ok(run(server, "create", "-g", group, "-f", str(folder / "main.json"), "-p", "prefix=loc", "-o", "json"))
    outputs = json.loads(out.stdout)["properties"]["outputs"]
    assert outputs["sibling"]["value"].endswith("/networkSecurityGroups/loc-up")
    assert outputs["grandchild"]["value"].endswith("/networkSecurityGroups/loc-child")
    assert sorted(nsg_names(http, server, group)) == ["loc-child", "loc-up"]

    (folder / "nested" / "grandchild.json").unlink()
    missing = failed(run(server, "validate", "-g", group, "-f", str(folder / "main.json")), 2)
    assert "grandchild.json" in missing.stderr + missing.stdout
