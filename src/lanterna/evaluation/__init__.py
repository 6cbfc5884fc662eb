"""Evaluations: deterministic evaluators, LLM-as-a-judge over a project's LLM
connections, online evaluation rules and the worker that runs them (docs/evaluations.md)."""
