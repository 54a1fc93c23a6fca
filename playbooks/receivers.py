"""Reactions of play sequences to other apps' signals. The work lives in `playbooks.sequence_services`."""

from __future__ import annotations

import datetime as dt

from django.dispatch import receiver

from accounts.ingest import mrr_expanded
from accounts.models import MrrMovement
from playbooks.models import Enrollment
from playbooks.sequence_services import enrollments_stop


@receiver(mrr_expanded, dispatch_uid="playbooks.stop_sequences_on_upgrade")
def stop_sequences_on_upgrade(sender, *, movements: list[MrrMovement], at: dt.datetime, **kwargs) -> None:
    """An upgrade recorded by billing (Stripe, the API, a CSV): the account's sequences stop, their pending
    steps cancelled. Sent inside the transaction that recorded the upgrades, so both commit or neither."""
    account_ids = {m.account_id for m in movements if m.kind == MrrMovement.Kind.EXPANSION}
    if account_ids:
        enrollments_stop(account_ids=account_ids, reason=Enrollment.StopReason.UPGRADED, at=at)
