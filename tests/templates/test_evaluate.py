"""Template-level evaluation: parameters, variables (with copy), user-defined functions, outputs, JSON walking."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import (
    EvaluationContext,
    KeyVaultReference,
    TemplateError,
    evaluate,
    evaluate_outputs,
    prepare,
    read_parameters,
    read_template,
)
from altostratus.templates.hashing import unique_string
from tests.support.templates import SUB, context, outputs, template

# --------------------------------------------------------------------------------------------------- parameters


def test_azure_stack_parameter_defaults() -> None:
    """101-vmss-linux-vm: String/Int/SecureString types with expression defaults."""
    doc = template(
        parameters={
            "vmssName": {
                "type": "String",
                "defaultValue": "[substring(concat('vmss', uniquestring(replace(resourceGroup().Id,'-',''))), 0, 8)]",
            },
            "instanceCount": {"type": "Int", "defaultValue": 2, "maxValue": 100},
            "adminPassword": {
                "type": "SecureString",
                "defaultValue": "[concat('Subscription#', subscription().subscriptionId)]",
            },
        },
        outputs={
            "name": {"type": "string", "value": "[parameters('vmssName')]"},
            "count": {"type": "int", "value": "[parameters('INSTANCECOUNT')]"},
            "password": {"type": "string", "value": "[parameters('adminPassword')]"},
        },
    )
    rg_id = f"/subscriptions/{SUB}/resourceGroups/examplegroup"
    assert outputs(doc) == {
        "name": ("vmss" + unique_string(rg_id.replace("-", "")))[:8],
        "count": 2,
        "password": f"Subscription#{SUB}",
    }


def test_parameter_defaults_can_use_later_parameters_and_detect_cycles() -> None:
    doc = template(
        parameters={
            "a": {"type": "string", "defaultValue": "[concat(parameters('b'), '-plan')]"},
            "b": {"type": "string", "defaultValue": "site"},
        },
        outputs={"a": {"type": "string", "value": "[parameters('a')]"}},
    )
    assert outputs(doc) == {"a": "site-plan"}
    doc["parameters"]["b"]["defaultValue"] = "[parameters('a')]"
    with pytest.raises(TemplateError, match="circular reference"):
        outputs(doc)


def test_supplied_values_are_literals() -> None:
    """ "[test]" from a parameter file is the string "[test]"; in a default it must be written "[[test]"."""
    doc = template(
        parameters={
            "fromFile": {"type": "string"},
            "escaped": {"type": "string", "defaultValue": "[[test]"},
        },
        outputs={
            "fromFile": {"type": "string", "value": "[parameters('fromFile')]"},
            "escaped": {"type": "string", "value": "[parameters('escaped')]"},
        },
    )
    assert outputs(doc, {"fromFile": "[test]"}) == {"fromFile": "[test]", "escaped": "[test]"}


@pytest.mark.parametrize(
    ("declared", "value"),
    [
        ("string", "x"),
        ("securestring", "secret"),
        ("int", 5),
        ("bool", False),
        ("object", {"a": 1}),
        ("secureObject", {"a": 1}),
        ("array", [1, "two"]),
        ("String", "case-insensitive type names"),
    ],
)
def test_parameter_types_accept(declared: str, value: Any) -> None:
    doc = template(
        parameters={"p": {"type": declared}},
        outputs={"o": {"type": "object", "value": "[createObject('v', parameters('p'))]"}},
    )
    assert outputs(doc, {"p": value}) == {"o": {"v": value}}


@pytest.mark.parametrize(
    ("declared", "value", "expected_type", "actual_type"),
    [
        ("int", "abc", "Int", "String"),
        ("int", True, "Int", "Boolean"),
        ("string", 5, "String", "Integer"),
        ("bool", "yes", "Bool", "String"),
        ("object", [], "Object", "Array"),
        ("array", {}, "Array", "Object"),
    ],
)
def test_parameter_types_reject(declared: str, value: Any, expected_type: str, actual_type: str) -> None:
    doc = template(parameters={"p": {"type": declared}})
    with pytest.raises(TemplateError) as err:
        prepare(doc, {"p": value}, context())
    assert (
        f"The provided value for the template parameter 'p' is not valid. Expected a value of type '{expected_type}', "
        f"but received a value of type '{actual_type}'." in err.value.message
    )


def test_command_line_strings_are_coerced_for_int_and_bool() -> None:
    doc = template(
        parameters={"n": {"type": "int"}, "flag": {"type": "bool"}},
        outputs={
            "n": {"type": "int", "value": "[parameters('n')]"},
            "flag": {"type": "bool", "value": "[parameters('flag')]"},
        },
    )
    assert outputs(doc, {"n": "3", "flag": "True"}) == {"n": 3, "flag": True}


def test_missing_and_unknown_parameters() -> None:
    doc = template(parameters={"vmName": {"type": "string"}, "size": {"type": "string", "defaultValue": "S"}})
    with pytest.raises(TemplateError) as err:
        prepare(doc, {}, context())
    assert err.value.message.startswith("The value for the template parameter 'vmName' is not provided.")
    assert err.value.path == "parameters.vmName"
    with pytest.raises(TemplateError) as err:
        prepare(doc, {"vmName": "a", "extra1": 1, "Extra2": 2}, context())
    assert err.value.message.startswith(
        "The template parameters 'extra1, Extra2' in the parameters file are not valid; they are not present in the "
        "original template and can therefore not be provided at deployment time. The only supported parameters for "
        "this template are 'vmName, size'."
    )
    prepare(doc, {"VMNAME": "a"}, context())  # supplied names match case-insensitively


def test_allowed_values() -> None:
    doc = template(
        parameters={
            "sku": {
                "type": "string",
                "defaultValue": "Standard_LRS",
                "allowedValues": ["Standard_LRS", "Standard_GRS"],
            },
            "zones": {"type": "array", "defaultValue": ["1"], "allowedValues": ["1", "2", "3"]},
        },
        outputs={"sku": {"type": "string", "value": "[parameters('sku')]"}},
    )
    assert outputs(doc) == {"sku": "Standard_LRS"}
    assert outputs(doc, {"sku": "standard_grs"}) == {"sku": "standard_grs"}  # case-insensitive match
    outputs(doc, {"zones": ["1", "3"]})  # arrays: every element must be allowed
    with pytest.raises(TemplateError) as err:
        outputs(doc, {"sku": "Premium_LRS"})
    assert (
        "The provided value 'Premium_LRS' for the template parameter 'sku' is not valid. The parameter value is not "
        "part of the allowed value(s): 'Standard_LRS,Standard_GRS'." in err.value.message
    )
    with pytest.raises(TemplateError, match="The provided value '4'"):
        outputs(doc, {"zones": ["1", "4"]})


def test_min_max_value_and_length() -> None:
    doc = template(
        parameters={
            "count": {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 100},
            "prefix": {"type": "string", "defaultValue": "abc", "minLength": 3, "maxLength": 10},
            "items": {"type": "array", "defaultValue": [1], "minLength": 1, "maxLength": 2},
        }
    )
    prepare(doc, {"count": 1}, context())
    prepare(doc, {"count": 100, "prefix": "abcdefghij", "items": [1, 2]}, context())
    cases = [
        ({"count": 0}, "The value is less than the minimum value '1'"),
        ({"count": 101}, "The value is greater than the maximum value '100'"),
        ({"prefix": "ab"}, "The length of the value '2' is less than the minimum length '3'"),
        ({"prefix": "abcdefghijk"}, "The length of the value '11' is greater than the maximum length '10'"),
        ({"items": []}, "is less than the minimum length '1'"),
        ({"items": [1, 2, 3]}, "is greater than the maximum length '2'"),
    ]
    for supplied, message in cases:
        with pytest.raises(TemplateError) as err:
            prepare(doc, supplied, context())
        assert message in err.value.message, supplied


def test_secure_values_are_not_echoed_and_not_in_deployment_parameters() -> None:
    doc = template(parameters={"pw": {"type": "securestring", "allowedValues": ["a"]}, "name": {"type": "string"}})
    with pytest.raises(TemplateError) as err:
        prepare(doc, {"pw": "hunter2", "name": "n"}, context())
    assert "hunter2" not in err.value.message
    ctx = prepare(
        template(parameters={"pw": {"type": "securestring"}, "name": {"type": "string"}}),
        {"pw": "hunter2", "name": "n"},
        context(),
    )
    assert ctx.deployment_parameters == {"pw": {}, "name": {"value": "n"}}


def test_nullable_parameter_and_key_vault_reference() -> None:
    doc = template(
        parameters={"opt": {"type": "string", "nullable": True}},
        outputs={"o": {"type": "bool", "value": "[empty(parameters('opt'))]"}},
    )
    assert outputs(doc) == {"o": True}
    ref = {
        "keyVault": {"id": "/subscriptions/x/resourceGroups/r/providers/Microsoft.KeyVault/vaults/v"},
        "secretName": "s",
    }
    values = read_parameters({"parameters": {"opt": {"reference": ref}}})
    assert values == {"opt": KeyVaultReference(ref)}
    with pytest.raises(TemplateError, match="Key Vault references are not supported"):
        prepare(doc, values, context())


def test_read_parameter_files() -> None:
    full = (
        b'\xef\xbb\xbf{\n  "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentParameters.json#",\n'
        b'  "contentVersion": "1.0.0.0",\n  // CI placeholder values\n  "parameters": {\n'
        b'    "vmssName": {"value": "GEN-UNIQUE-vmssname"},\n    "adminPassword": {"value": "[not an expression]"},\n'
        b"  }\n}\n"
    )
    assert read_parameters(full) == {"vmssName": "GEN-UNIQUE-vmssname", "adminPassword": "[not an expression]"}
    assert read_parameters('{"a": {"value": 1}, "b": {"value": [1]}}') == {"a": 1, "b": [1]}
    assert read_parameters('{"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {}}') == {}
    with pytest.raises(TemplateError, match="must be an object with a 'value' property"):
        read_parameters('{"parameters": {"a": 1}, "other": 2}')


# ---------------------------------------------------------------------------------------------------- variables


def test_variables_are_lazy_case_insensitive_and_memoised() -> None:
    """vmss-ubuntu-web-ssl defines ``bepoolName`` and reads ``variables('bePoolName')``."""
    doc = template(
        variables={
            "bePoolID": "[concat(variables('lbID'), '/backendAddressPools/', variables('bePoolName'))]",
            "lbID": "[resourceId('Microsoft.Network/loadBalancers', 'lb')]",
            "bepoolName": "pool",
        },
        outputs={"id": {"type": "string", "value": "[variables('bepoolID')]"}},
    )
    assert outputs(doc)["id"].endswith("/providers/Microsoft.Network/loadBalancers/lb/backendAddressPools/pool")


def test_variable_errors() -> None:
    doc = template(
        variables={"a": "[variables('b')]", "b": "[variables('a')]"},
        outputs={"o": {"type": "string", "value": "[variables('a')]"}},
    )
    with pytest.raises(TemplateError, match="circular reference detected"):
        outputs(doc)
    doc = template(outputs={"o": {"type": "string", "value": "[variables('missing')]"}})
    with pytest.raises(TemplateError) as err:
        outputs(doc)
    assert "The template variable 'missing' is not found." in err.value.message
    doc = template(
        variables={"bad": "[substring('abc', 5)]"}, outputs={"o": {"type": "string", "value": "[variables('bad')]"}}
    )
    with pytest.raises(TemplateError) as err:
        outputs(doc)
    assert err.value.message.startswith(
        "The template variable 'bad' is not valid: Unable to evaluate template language function 'substring'"
    )
    assert err.value.path == "variables.bad"
    doc = template(parameters={"p": {"type": "string", "defaultValue": "[variables('v')]"}}, variables={"v": "x"})
    with pytest.raises(TemplateError, match="'variables' is not expected at this location"):
        prepare(doc, {}, context())


def test_variable_copy_documented_example() -> None:
    """docs:copy-variables: top-level copy (disk names) and copy inside an object variable."""
    doc = template(
        variables={
            "copy": [
                {"name": "diskNames", "count": 5, "input": "[concat('myDataDisk', copyIndex('diskNames', 1))]"},
                {"name": "stringArray", "count": "3", "input": "[concat('item', copyIndex('stringArray'))]"},
            ],
            "disk-array-on-object": {
                "copy": [
                    {
                        "name": "disks",
                        "count": 2,
                        "input": {
                            "name": "[concat('myDataDisk', copyIndex('disks', 1))]",
                            "diskSizeGB": "1",
                            "diskIndex": "[copyIndex('disks')]",
                        },
                    }
                ]
            },
        },
        outputs={
            "names": {"type": "array", "value": "[variables('diskNames')]"},
            "strings": {"type": "array", "value": "[variables('stringArray')]"},
            "object": {"type": "object", "value": "[variables('disk-array-on-object')]"},
        },
    )
    assert outputs(doc) == {
        "names": [f"myDataDisk{i}" for i in range(1, 6)],
        "strings": ["item0", "item1", "item2"],
        "object": {
            "disks": [
                {"name": "myDataDisk1", "diskSizeGB": "1", "diskIndex": 0},
                {"name": "myDataDisk2", "diskSizeGB": "1", "diskIndex": 1},
            ]
        },
    }


def test_copy_count_limits() -> None:
    for count, ok in ((0, True), (800, True), (801, False), (-1, False), ("x", False)):
        doc = template(
            variables={"copy": [{"name": "v", "count": count, "input": "[copyIndex('v')]"}]},
            outputs={"n": {"type": "int", "value": "[length(variables('v'))]"}},
        )
        if ok:
            assert outputs(doc) == {"n": count}
        else:
            with pytest.raises(TemplateError, match="copy count must be a non-negative integer"):
                outputs(doc)


# ---------------------------------------------------------------------------------------- user-defined functions


UDF_SECTION = [
    {
        "namespace": "contoso",
        "members": {
            "uniqueName": {
                "parameters": [{"name": "namePrefix", "type": "string"}],
                "output": {
                    "type": "string",
                    "value": "[concat(toLower(parameters('namePrefix')), uniqueString(resourceGroup().id))]",
                },
            },
            "pair": {
                "parameters": [{"name": "a", "type": "int"}, {"name": "b", "type": "int"}],
                "output": {"type": "array", "value": ["[parameters('a')]", "[add(parameters('a'), parameters('b'))]"]},
            },
            "useVariable": {"parameters": [], "output": {"type": "string", "value": "[variables('v')]"}},
            "useReference": {"parameters": [], "output": {"type": "object", "value": "[reference('x')]"}},
        },
    }
]


def test_user_defined_functions() -> None:
    doc = template(
        parameters={"storageNamePrefix": {"type": "string", "defaultValue": "StoRage"}},
        variables={"v": "x"},
        functions=UDF_SECTION,
        outputs={
            "name": {"type": "string", "value": "[contoso.uniqueName(parameters('storageNamePrefix'))]"},
            "pair": {"type": "array", "value": "[Contoso.PAIR(2, 3)]"},
        },
    )
    rg_id = f"/subscriptions/{SUB}/resourceGroups/examplegroup"
    assert outputs(doc) == {"name": "storage" + unique_string(rg_id), "pair": [2, 5]}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[contoso.useVariable()]", "'variables' is not expected at this location"),
        ("[contoso.useReference()]", "'reference' is not expected at this location"),
        ("[contoso.pair(1)]", "function requires 2 argument(s) while 1 were provided"),
        ("[contoso.pair(1, 'x')]", "expects a value of type 'int'"),
        ("[contoso.missing()]", "no user-defined function with that name"),
        ("[other.uniqueName('a')]", "no user-defined function with that name"),
    ],
)
def test_user_defined_function_errors(expression: str, message: str) -> None:
    doc = template(variables={"v": "x"}, functions=UDF_SECTION, outputs={"o": {"type": "object", "value": expression}})
    with pytest.raises(TemplateError) as err:
        outputs(doc, reference=lambda n, v, f: {})
    assert message in err.value.message


def test_user_defined_function_parameters_do_not_see_template_parameters() -> None:
    section = [
        {
            "namespace": "ns",
            "members": {"f": {"parameters": [], "output": {"type": "string", "value": "[parameters('p')]"}}},
        }
    ]
    doc = template(
        parameters={"p": {"type": "string", "defaultValue": "x"}},
        functions=section,
        outputs={"o": {"type": "string", "value": "[ns.f()]"}},
    )
    with pytest.raises(TemplateError, match="The template parameter 'p' is not found"):
        outputs(doc)


# ------------------------------------------------------------------------------------------------------ outputs


def test_outputs_copy_condition_types_and_secure() -> None:
    doc = template(
        parameters={"pw": {"type": "securestring", "defaultValue": "s3cret"}},
        outputs={
            "names": {"type": "array", "copy": {"count": 3, "input": "[concat('storage', copyIndex())]"}},
            "arrayCopy": {"type": "array", "copy": [{"count": 2, "input": "[copyIndex(1)]"}]},
            "skipped": {"condition": "[equals(1, 2)]", "type": "string", "value": "[parameters('missing')]"},
            "shown": {"condition": true_(), "type": "int", "value": 1},
            "secret": {"type": "securestring", "value": "[parameters('pw')]"},
        },
    )
    ctx = prepare(doc, {}, context())
    assert evaluate_outputs(doc["outputs"], ctx) == {
        "names": {"type": "Array", "value": ["storage0", "storage1", "storage2"]},
        "arrayCopy": {"type": "Array", "value": [1, 2]},
        "shown": {"type": "Int", "value": 1},
    }
    assert evaluate_outputs(doc["outputs"], ctx, include_secure=True)["secret"] == {
        "type": "SecureString",
        "value": "s3cret",
    }
    bad = template(outputs={"o": {"type": "int", "value": "text"}})
    with pytest.raises(TemplateError, match="declared as 'int'"):
        outputs(bad)


def true_() -> str:
    return "[true()]"


# ------------------------------------------------------------------------------------------------ JSON walking


def test_evaluate_walks_json_and_keeps_input_unchanged() -> None:
    body = {
        "name": "[concat('vm', copyIndex())]",
        "[notAKey()]": ["[[literal]", 1, None, True, {"nested": "[add(1, 2)]"}],
        "properties": {
            "copy": [
                {"name": "dataDisks", "count": 2, "input": {"lun": "[copyIndex('dataDisks')]", "vm": "[copyIndex()]"}}
            ],
            "linuxConfiguration": "[json('null')]",
        },
    }
    snapshot = repr(body)
    ctx = EvaluationContext(phase="resources").with_copy_index("vms", 4, current=True)
    result = evaluate(body, ctx)
    assert result == {
        "name": "vm4",
        "[notAKey()]": ["[literal]", 1, None, True, {"nested": 3}],
        "properties": {"dataDisks": [{"lun": 0, "vm": 4}, {"lun": 1, "vm": 4}], "linuxConfiguration": None},
    }
    assert repr(body) == snapshot
    assert "linuxConfiguration" not in evaluate(body, ctx, drop_nulls=True)["properties"]


def test_errors_carry_json_path_and_source_position() -> None:
    text = (
        "{\n"
        '  "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#",\n'
        '  "contentVersion": "1.0.0.0",\n'
        '  "variables": {\n'
        '    "ok": "fine",\n'
        '    "bad": "[concat(\'a\', )]"\n'
        "  },\n"
        '  "resources": [],\n'
        '  "outputs": {"o": {"type": "string", "value": "[variables(\'bad\')]"}}\n'
        "}\n"
    )
    doc, source = read_template(text)
    ctx = prepare(doc, {}, context(), source=source)
    with pytest.raises(TemplateError) as err:
        evaluate_outputs(doc["outputs"], ctx)
    assert err.value.path == "variables.bad"
    assert (err.value.line, err.value.column) == (6, 12)
    assert err.value.message.startswith("The template variable 'bad' is not valid: The language expression")
    assert "expected a function call or a literal and actual 'RightParenthesis' at position '13'" in err.value.message
    assert err.value.additional_info() == {
        "type": "TemplateViolation",
        "info": {"lineNumber": 6, "linePosition": 12, "path": "variables.bad"},
    }


def test_missing_parameter_reports_line_and_column() -> None:
    text = (
        '{\n  "parameters": {\n    "adminPassword": {\n      "type": "securestring"\n    }\n  },\n  "resources": []\n}'
    )
    doc, source = read_template(text)
    with pytest.raises(TemplateError) as err:
        prepare(doc, {}, context(), source=source)
    assert err.value.message.startswith(
        "The value for the template parameter 'adminPassword' at line '3' and column '22' is not provided."
    )
    assert (err.value.line, err.value.column) == (3, 22)
