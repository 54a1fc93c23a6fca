"""Signals the accounts app sends, so higher layers can react without accounts importing them."""

from django.dispatch import Signal

# Sent after the indicators of specific accounts were refreshed because new usage arrived.
# Arguments: account_ids (list[int]), as_of (ISO date string).
indicators_refreshed = Signal()
