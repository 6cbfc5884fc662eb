"""Check an answer against a schema of Langfuse's OpenAPI spec (``components/schemas``),
when the spec is beside the checkout (``../shared/reference/langfuse-openapi.yml``);
without it the check is skipped (the tests' own assertions still run)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()
SPEC = next(
    (
        up / "shared" / "reference" / "langfuse-openapi.yml"
        for up in _HERE.parents[1:4]
        if (up / "shared" / "reference" / "langfuse-openapi.yml").exists()
    ),
    None,
)


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _document() -> dict[str, Any] | None:
    if SPEC is None:
        return None
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    return {"components": {"schemas": _json_schema(spec["components"]["schemas"])}}


def conforms(name: str, body: Any) -> None:
    """Fail unless ``body`` is valid against the spec's schema ``name``."""
    document = _document()
    if document is None:
        return
    import jsonschema

    schema = {**document, "$ref": f"#/components/schemas/{name}"}
    jsonschema.validate(body, schema)
