"""The read layer: the views the public API and the dashboard both show, composed once:
the trace list and one trace (:mod:`.traces`), the session list and one session
(:mod:`.sessions`), the user list and one user (:mod:`.users`).

Each function takes the :class:`~lanterna.store.interface.Store` (``Runtime.store``), a
read connection and typed parameters and returns plain data (stored rows, dataclasses).
Stored rows come only through the store (an import-linter contract keeps the store's
operation modules out of here); metrics come from :mod:`lanterna.analytics`; turning rows
into JSON is the HTTP layer's (``server/shapes.py``). Nothing here knows HTTP: no
FastAPI, Starlette or ``lanterna.server`` (an import-linter contract).
"""
