"""A/B tests (``ab-tests`` in the API, UI and SDK): pure rules, no storage, no HTTP.

- :mod:`.assign`: the deterministic, weighted assignment of a unit (a user or session
  id) to a variant. The SDK and the server run this same code, so a unit sees the same
  variant in any process, with no request once the test's definition is cached.
- :mod:`.rules`: what an A/B test definition may hold, its states and transitions.
- :mod:`.stats`: the statistical readout (scipy and statsmodels) and its verdict.

Importing this package imports neither scipy nor statsmodels (the SDK needs only
:mod:`.assign`).
"""
