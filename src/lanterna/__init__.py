"""Lanterna: self-hosted LLM observability, compatible with the Langfuse wire protocol.

``import lanterna`` pulls in no server dependencies. The server lives in
``lanterna.server`` (``pip install 'lanterna[server]'``) and runs with ``lanterna serve``.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
