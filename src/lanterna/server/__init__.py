"""The Lanterna server: ASGI app, public API, settings. Needs ``lanterna[server]``."""

from starlette.convertors import PathConvertor, register_url_convertor


class _AnyPath(PathConvertor):
    """Starlette's ``path`` convertor, matching line feeds too: an id or name holding one
    (stored from an ingestion batch) is read by id like any other. Registered here, before
    any route module compiles its paths (they all import through this package)."""

    regex = r"[\s\S]*"


register_url_convertor("path", _AnyPath())
