.PHONY: test lint check bench serve

test:
	scripts/test

lint:
	.venv/bin/ruff check src tests
	.venv/bin/ruff format --check src tests

check: lint
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo

bench:
	.venv/bin/python bench/ingest.py

serve:
	.venv/bin/lanterna serve
