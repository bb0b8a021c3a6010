"""Function calling: which tool a request makes the model call, and with what arguments.

Deterministic stand-in for a model: it always calls a tool when offered one (OpenAI's "auto"
may answer in text instead), and its arguments give every parameter a value of its type.
"""

from __future__ import annotations

import json
from typing import Any

from .completions import FunctionCall
from .replies import ToolCall

# A value of each JSON-schema type; only ever serialized, so sharing the containers is safe.
_SAMPLES: dict[str, Any] = {
    "string": "fake",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
}


def _functions(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The function specs of the request's tools (other tool types are never called)."""
    tools = (body or {}).get("tools")
    if not isinstance(tools, list):
        return []
    offered = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]
    specs = [t.get("function") for t in offered]
    return [s for s in specs if isinstance(s, dict) and isinstance(s.get("name"), str)]


def _forced(body: dict[str, Any] | None) -> str | None:
    """The name in tool_choice {"type": "function", "function": {"name": ...}}, if any."""
    choice = (body or {}).get("tool_choice")
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _sample(schema: object) -> Any:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):  # a nullable type is written ["string", "null"]
        kind = kind[0] if kind else None
    return _SAMPLES.get(kind) if isinstance(kind, str) else None


def sample_arguments(parameters: object) -> str:
    """JSON arguments with every property of the parameters' schema, each a sample value."""
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return "{}"
    return json.dumps({name: _sample(schema) for name, schema in properties.items()})


def complete(call: ToolCall, body: dict[str, Any] | None) -> FunctionCall:
    """The scripted call with what it leaves out taken from the request's tools."""
    functions = _functions(body)
    name = call.name or _forced(body) or (functions[0]["name"] if functions else "unknown")
    if call.arguments is not None:
        return FunctionCall(name, call.arguments)
    spec = next((f for f in functions if f["name"] == name), {})
    return FunctionCall(name, sample_arguments(spec.get("parameters")))


def default_call(body: dict[str, Any] | None) -> FunctionCall | None:
    """The call the default answer makes: one whenever tools are offered and not refused."""
    if not _functions(body) or (body or {}).get("tool_choice") == "none":
        return None
    return complete(ToolCall(), body)
