"""The ARM template language: expressions, the built-in function catalogue and template-level evaluation.

This package knows nothing about HTTP or storage. The deployment engine builds an :class:`EvaluationContext`
(scope, deployment, callbacks for ``reference()``/``list*()``/``providers()``), calls :func:`prepare` with the
template and the supplied parameter values, then :func:`evaluate` for each resource and :func:`evaluate_outputs`.
Every problem surfaces as a :class:`TemplateError` carrying ARM's ``InvalidTemplate`` code, a JSON path and, when the
source is known, line and column. See ``docs/templates.md``.
"""

from altostratus.templates.context import EvaluationContext, NamedValues, UserFunction
from altostratus.templates.errors import TemplateError
from altostratus.templates.evaluate import (
    KeyVaultReference,
    define_functions,
    define_variables,
    evaluate_outputs,
    prepare,
    process_parameters,
    read_parameters,
    read_template,
    secure_parameter_names,
)
from altostratus.templates.expressions import is_expression, iter_calls, iter_expression_calls, parse
from altostratus.templates.functions import function_names
from altostratus.templates.hashing import arm_guid, unique_string
from altostratus.templates.interpreter import eval_node, evaluate, evaluate_expression
from altostratus.templates.loader import SourceMap, load_document, loads

__all__ = [
    "EvaluationContext",
    "KeyVaultReference",
    "NamedValues",
    "SourceMap",
    "TemplateError",
    "UserFunction",
    "arm_guid",
    "define_functions",
    "define_variables",
    "eval_node",
    "evaluate",
    "evaluate_expression",
    "evaluate_outputs",
    "function_names",
    "is_expression",
    "iter_calls",
    "iter_expression_calls",
    "load_document",
    "loads",
    "parse",
    "prepare",
    "process_parameters",
    "read_parameters",
    "read_template",
    "secure_parameter_names",
    "unique_string",
]
