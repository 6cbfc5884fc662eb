"""The Lanterna server: ASGI app, public API, settings. Needs ``lanterna[server]``."""
