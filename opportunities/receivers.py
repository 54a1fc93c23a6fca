"""Reactions to other apps' signals. Receivers only enqueue work; the work lives in services."""

from django.db import transaction
from django.dispatch import receiver

from accounts.signals import indicators_refreshed
from opportunities import billing  # noqa: F401 - connects the won-close receiver of billing upgrades


@receiver(indicators_refreshed)
def flag_after_refresh(sender, *, account_ids: list[int], as_of: str, **kwargs) -> None:
    """New usage was scored into indicators: re-score those accounts now instead of at the next beat."""
    from opportunities.tasks import flag_candidates

    transaction.on_commit(lambda: flag_candidates.delay(as_of=as_of, account_ids=account_ids))
