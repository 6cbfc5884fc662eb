"""Answers documented by a pydantic model, put into the OpenAPI document in one pass.

FastAPI turns every ``responses={...: {"model": M}}`` into a field of its own and walks
every field of every nested model once more when it builds the document: with some 250
answer models that took 5-13 s on the first request for ``/api/openapi.json`` (long
enough for clients to time out). Routes say :func:`answer` instead: the answer's content
holds a marker naming the model, and :func:`resolve` replaces every marker by a
reference to the model's schema, all of them generated together by pydantic's
``models_json_schema``. The document is the same; the models are documentation only (the
routes answer with orjson what ``server/shapes.py`` builds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema


class DocModel(BaseModel):
    """The base of the API's models. They document requests and answers (the routes
    check bodies and build answers themselves), so pydantic builds each one when first
    used, mostly for the OpenAPI document, not when the server starts (``defer_build``)."""

    model_config = ConfigDict(defer_build=True)


#: The key of the marker that stands for a model's schema until :func:`resolve`.
MODEL_KEY = "x-lanterna-model"
_MODELS: dict[str, Any] = {}


def answer(model: Any, description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """A documented answer (a value of a route's ``responses``): JSON shaped as ``model``
    (a pydantic model, or a type such as a discriminated union of models), with other
    media types of ``content`` beside it."""
    name = getattr(model, "__qualname__", None) or type(model).__name__
    key = f"{getattr(model, '__module__', '')}.{name}#{id(model)}"
    _MODELS[key] = model
    media: dict[str, Any] = {"application/json": {"schema": {MODEL_KEY: key}}}
    media.update(content or {})
    return {"description": description, "content": media}


class Deferred(dict[str, Any]):
    """A route's ``openapi_extra`` made only when the OpenAPI document is built: a JSON
    schema of a request body takes pydantic a few milliseconds per model, which every
    start of the server paid for some fifty routes. FastAPI reads the mapping's truth,
    items and values (``fastapi.openapi.utils.deep_dict_update``); each of them fills it
    first."""

    def __init__(self, make: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._make: Callable[[], dict[str, Any]] | None = make

    def _fill(self) -> None:
        make = self._make
        if make is not None:
            # Marked filled only once full: another thread reading meanwhile fills it
            # too (the same content) rather than seeing it empty.
            super().update(make())
            self._make = None

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return super().__iter__()

    def __getitem__(self, key: str) -> Any:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __eq__(self, other: object) -> bool:
        self._fill()
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()

    def get(self, key: str, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def keys(self) -> Any:
        self._fill()
        return super().keys()

    def values(self) -> Any:
        self._fill()
        return super().values()

    def items(self) -> Any:
        self._fill()
        return super().items()

    def copy(self) -> dict[str, Any]:
        self._fill()
        return dict(super().items())


def request_body(schema: Callable[[], dict[str, Any]]) -> Deferred:
    """A route's documented, required JSON body (``openapi_extra=``) whose schema
    ``schema()`` makes when the document is built."""
    return Deferred(
        lambda: {
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema()}}}
        }
    )


def _markers(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if set(node) == {MODEL_KEY}:
            found.add(node[MODEL_KEY])
            return
        for value in node.values():
            _markers(value, found)
    elif isinstance(node, list):
        for value in node:
            _markers(value, found)


def _replace(node: Any, refs: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, dict):
        if set(node) == {MODEL_KEY}:
            return refs[node[MODEL_KEY]]
        return {key: _replace(value, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace(value, refs) for value in node]
    return node


def resolve(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with every marker replaced by a reference to its model's schema, the
    schemas added to ``schemas`` (the document's components). A model whose name is
    already a different component is an error (one name, one schema)."""
    keys: set[str] = set()
    _markers(paths, keys)
    if not keys:
        return paths
    ordered = sorted(keys)
    inputs = []
    for key in ordered:
        model = _MODELS[key]
        core = (
            model.__pydantic_core_schema__
            if isinstance(model, type) and issubclass(model, BaseModel)
            else TypeAdapter(model).core_schema
        )
        inputs.append((key, "serialization", core))
    generator = GenerateJsonSchema(ref_template="#/components/schemas/{model}")
    mapping, definitions = generator.generate_definitions(inputs)  # type: ignore[arg-type]
    for name, schema in definitions.items():
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two schemas named {name} in the OpenAPI document")
    refs = {key: mapping[(key, "serialization")] for key in ordered}
    resolved: dict[str, Any] = _replace(paths, refs)
    return resolved
