"""Prompts: versions, labels, references between prompts, and variable compilation.

``compile`` is pure standard library so the SDK can use it without server dependencies.
"""
