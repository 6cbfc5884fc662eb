"""The read layer: the views the public API and the dashboard both show, composed once.

Each function takes a read connection and typed parameters and returns plain data
(stored rows, dataclasses): the trace list and one trace (:mod:`.traces`), the session
list and one session (:mod:`.sessions`), the user list and one user (:mod:`.users`).
Metrics come from :mod:`lanterna.analytics`; turning rows into JSON is the HTTP layer's
(``server/shapes.py``). Nothing here knows HTTP: no FastAPI, Starlette or
``lanterna.server`` (an import-linter contract).
"""
