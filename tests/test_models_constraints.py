"""Invariants the database itself enforces."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from opportunities.models import Outcome
from tests.factories import OpportunityFactory


def test_it_allows_only_one_open_opportunity_per_account(account):
    OpportunityFactory(account=account)

    with pytest.raises(IntegrityError), transaction.atomic():
        OpportunityFactory(account=account)


def test_it_allows_a_new_opportunity_once_the_previous_one_closed(account):
    first = OpportunityFactory(account=account)
    first.outcome = Outcome.WON
    first.closed_at = timezone.now()
    first.save()

    OpportunityFactory(account=account)

    assert account.opportunities.count() == 2
