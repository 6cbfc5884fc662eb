"""The version of the lanterna distribution (a module of its own: the server reads it
without importing the SDK that ``lanterna/__init__.py`` exposes)."""

__version__ = "0.1.0.dev0"
