"""Metrics, each defined once (:mod:`.metrics`: the scope, the SQL of each metric, the
dashboard's totals, percentiles, series and top lists; :mod:`.usage`: usage per session,
user and day), for the UI, the API and alerts alike.
"""
