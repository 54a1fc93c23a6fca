"""Managers reassign accounts, one or many, with their open opportunities; the timelines record it."""

import datetime as dt

import pytest

from accounts.models import Account, AuditEntry
from opportunities.models import Opportunity, OpportunityEvent, Outcome
from opportunities.reassignment import ReassignmentRefused, accounts_reassign
from tests.factories import AccountFactory, OpportunityFactory, UserFactory

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def test_a_manager_moves_accounts_with_their_open_and_snoozed_opportunities(manager, csm, other_csm):
    first, second = AccountFactory(owner=csm), AccountFactory(owner=csm)
    open_one = OpportunityFactory(account=first)
    snoozed = OpportunityFactory(
        account=second, outcome=Outcome.SNOOZED, closed_at=AT, snoozed_until=dt.date(2026, 12, 20)
    )
    won = OpportunityFactory(account=second, outcome=Outcome.WON, closed_at=AT)
    versions = {o.pk: o.version for o in (open_one, snoozed, won)}

    result = accounts_reassign(account_ids=[first.pk, second.pk], to=other_csm, by=manager, at=AT)

    assert (result.accounts, result.opportunities) == (2, 2)
    assert set(Account.objects.filter(owner=other_csm).values_list("pk", flat=True)) == {first.pk, second.pk}
    for opportunity, moved in ((open_one, True), (snoozed, True), (won, False)):
        opportunity.refresh_from_db()
        assert (opportunity.owner == other_csm) is moved
        assert opportunity.version == versions[opportunity.pk] + (1 if moved else 0)
    event = OpportunityEvent.objects.get(opportunity=open_one, kind=OpportunityEvent.Kind.ASSIGNED)
    assert (event.actor, event.changes) == (manager, {"owner_before": csm.pk, "owner_after": other_csm.pk})
    assert "Reassigned with the account to Olive Park" in event.message
    entry = AuditEntry.objects.get(object_type="accounts.Account", object_id=str(first.pk))
    assert (entry.before, entry.after, entry.actor) == ({"owner": csm.pk}, {"owner": other_csm.pk}, manager)


def test_accounts_already_with_the_new_owner_are_left_alone(manager, other_csm):
    theirs = AccountFactory(owner=other_csm)

    result = accounts_reassign(account_ids=[theirs.pk], to=other_csm, by=manager, at=AT)

    assert (result.accounts, result.opportunities) == (0, 0)
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize("who", ["csm", "to_manager", "inactive", "nothing"])
def test_it_refuses_and_changes_nothing(who, manager, csm, other_csm):
    account = AccountFactory(owner=csm)
    by, to, ids = manager, other_csm, [account.pk]
    if who == "csm":
        by = csm
    elif who == "to_manager":
        to = UserFactory(username="mira", role="Manager")
    elif who == "inactive":
        other_csm.is_active = False
        other_csm.save()
    else:
        ids = []

    with pytest.raises(ReassignmentRefused):
        accounts_reassign(account_ids=ids, to=to, by=by, at=AT)

    account.refresh_from_db()
    assert account.owner == csm
    assert not Opportunity.objects.exists() and not AuditEntry.objects.exists()


def test_it_runs_the_same_queries_for_two_and_for_twenty_accounts(manager, csm, other_csm):
    def book(n):
        accounts = [AccountFactory(owner=csm) for _ in range(n)]
        for account in accounts:
            OpportunityFactory(account=account)
        return [a.pk for a in accounts]

    small, large = book(2), book(20)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.roles import role_of

    role_of(manager), role_of(other_csm)  # roles are read once per request and kept on the user
    with CaptureQueriesContext(connection) as two:
        accounts_reassign(account_ids=small, to=other_csm, by=manager, at=AT)
    with CaptureQueriesContext(connection) as twenty:
        accounts_reassign(account_ids=large, to=other_csm, by=manager, at=AT)

    assert len(twenty) == len(two)
