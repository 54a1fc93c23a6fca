"""Managers move accounts, with their open and snoozed opportunities, from one CSM to another.

Kept apart from services.py (one opportunity at a time): this one works on many accounts at once, set-based.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from accounts.models import Account, AuditEntry
from accounts.roles import Role, is_manager_or_admin, role_of
from opportunities.models import Opportunity, OpportunityEvent, Outcome

MAX_ACCOUNTS = 500
"""Accounts per reassignment: a manager's selection, not a migration of the whole book."""


class ReassignmentRefused(Exception):
    """Why the reassignment cannot happen (nothing was changed)."""


@dataclass(frozen=True, slots=True)
class Reassigned:
    accounts: int
    opportunities: int


def _name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


@transaction.atomic
def accounts_reassign(
    *, account_ids: Iterable[int], to: AbstractBaseUser, by: AbstractBaseUser, at: dt.datetime
) -> Reassigned:
    """Give the accounts to `to`, a CSM, with their open and snoozed opportunities.

    Accounts already owned by `to` are left alone. Each moved account gets an audit entry (owner before and
    after, shown in its timeline) and each moved opportunity an `assigned` event and a new version, so a
    form open on the old owner's screen answers 409 instead of overwriting. Queries: the accounts (locked),
    one update and one audit insert for them, the opportunities (locked), one update of them, one insert of
    events: the same number for one account or five hundred.
    """
    if not is_manager_or_admin(by):
        raise ReassignmentRefused("Only a manager reassigns accounts.")
    if not to.is_active or role_of(to) != Role.CSM:
        raise ReassignmentRefused(f"{_name(to)} is not an active CSM.")
    ids = sorted(set(account_ids))
    if not ids:
        raise ReassignmentRefused("Choose at least one account.")
    if len(ids) > MAX_ACCOUNTS:
        raise ReassignmentRefused(f"Reassign at most {MAX_ACCOUNTS} accounts at a time.")
    accounts = list(
        Account.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .exclude(owner=to)
        .select_related("owner")
        .order_by("pk")
    )
    if not accounts:
        return Reassigned(accounts=0, opportunities=0)
    moved_ids = [a.pk for a in accounts]
    Account.objects.filter(pk__in=moved_ids).update(owner=to, updated_at=at)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            object_type=Account._meta.label,
            object_id=str(account.pk),
            object_repr=str(account)[:200],
            action=AuditEntry.Action.UPDATED,
            before={"owner": account.owner_id},
            after={"owner": to.pk},
            actor=by,
            at=at,
        )
        for account in accounts
    )
    opportunities = list(
        Opportunity.objects.select_for_update()
        .filter(account_id__in=moved_ids, outcome__in=[Outcome.OPEN, Outcome.SNOOZED])
        .exclude(owner=to)
        .order_by("pk")
        .values_list("pk", "owner_id")
    )
    if opportunities:
        Opportunity.objects.filter(pk__in=[pk for pk, _ in opportunities]).update(
            owner=to, version=F("version") + 1, updated_at=at
        )
        OpportunityEvent.objects.bulk_create(
            OpportunityEvent(
                opportunity_id=pk,
                actor=by,
                occurred_at=at,
                kind=OpportunityEvent.Kind.ASSIGNED,
                changes={"owner_before": before, "owner_after": to.pk},
                message=f"Reassigned with the account to {_name(to)}",
            )
            for pk, before in opportunities
        )
    return Reassigned(accounts=len(accounts), opportunities=len(opportunities))
