"""Alerts and budgets: rules evaluated over the metric layer, their history, and the
channels (webhook, Slack, email) that carry notifications."""
