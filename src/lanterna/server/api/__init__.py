"""Public API: one module per resource, each exposing ``router``."""
