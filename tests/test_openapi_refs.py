"""Every reference in the OpenAPI document resolves, to the schema its model meant.

A body schema written inline (``json_body``) carries its nested models under ``$defs``;
``openapi.document`` moves them into ``components.schemas``. A ``$ref`` (or a
discriminator's mapping) left pointing at ``#/$defs/...`` resolves to nothing inside the
document, and a generator then sends no body at all; a nested model named like another
component would silently take that one's schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from lanterna.server.app import create_app
from lanterna.server.settings import Settings


def _pointers(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(where, pointer)`` of every local reference in ``node``: ``$ref`` values and
    any other string that is a JSON pointer into the document (discriminator mappings)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and value.startswith("#/"):
                yield f"{where}/{key}", value
            else:
                yield from _pointers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _pointers(item, f"{where}/{index}")


def _resolves(spec: dict[str, Any], pointer: str) -> bool:
    node: Any = spec
    for part in pointer.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def test_every_reference_resolves(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=str(tmp_path))).openapi()
    found = list(_pointers(spec))
    refs = {pointer for _where, pointer in found}
    # The body schemas with nested models (A/B test variants, SCIM names and emails,
    # channel configs, masking rules) are among them.
    for name in ("Variant", "ScimName", "ScimEmail", "WebhookConfig", "BuiltinRule"):
        assert f"#/components/schemas/{name}" in refs, name
    dangling = [(where, pointer) for where, pointer in found if not _resolves(spec, pointer)]
    assert not dangling, dangling
    assert not any("$defs" in pointer for pointer in refs)


def _defs(node: Any) -> Iterator[tuple[str, Any]]:
    """Every ``$defs`` entry anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$defs":
                yield from value.items()
            yield from _defs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _defs(item)


def _text(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True).replace("#/$defs/", "#/components/schemas/")


def test_nested_body_models_keep_their_own_schemas(tmp_path: Path) -> None:
    """A nested model of an inline body never shares its name with a different schema
    (another body's nested model, or a component FastAPI made), which the document
    would keep in its place; the document refuses to build with one (answers' models
    included: tests/test_openapi_fuzz.py builds it)."""
    app = create_app(Settings(data_dir=str(tmp_path)))
    raw = copy.deepcopy(FastAPI.openapi(app))  # before the nested models are moved
    app.openapi_schema = None
    components = raw.get("components", {}).get("schemas", {})
    seen: dict[str, str] = {}
    for name, schema in _defs(raw["paths"]):
        if name in components:
            seen.setdefault(name, _text(components[name]))
        assert seen.setdefault(name, _text(schema)) == _text(schema), name
    assert app.openapi()["components"]["schemas"]
