"""Dashboard metrics, each defined once: per-page aggregates for the trace, session and
user lists, and the project metrics (totals, percentiles, time series, top lists) that
the UI shows and the API and alerts can reuse.
"""
