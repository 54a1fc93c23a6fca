"""AnyOf: an IN list that PostgreSQL gets as one array parameter, with IN's answers everywhere."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from accounts.lookups import AnyOf
from accounts.models import Account
from tests.factories import AccountFactory


@pytest.mark.django_db
def test_it_matches_what_an_in_list_matches_nulls_duplicates_and_all():
    first, second, third = AccountFactory.create_batch(3)
    cases = [[first.pk, third.pk], [third.pk, third.pk, None], [second.pk, 10**9], [None], []]
    for ids in cases:
        chosen = set(Account.objects.filter(AnyOf(F("pk"), ids)).values_list("pk", flat=True))
        expected = set(Account.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        assert chosen == expected, ids


@pytest.mark.django_db
def test_on_postgresql_the_list_is_one_parameter_whatever_its_length():
    if connection.vendor != "postgresql":
        pytest.skip("the array form is PostgreSQL's; other databases get the IN list")
    statements = []
    for count in (2, 60):
        with CaptureQueriesContext(connection) as queries:
            list(Account.objects.filter(AnyOf(F("pk"), list(range(1, count + 1)))))
        statements.append(queries.captured_queries[-1]["sql"])
    assert all('"accounts_account"."id" = ANY(' in sql and " IN (" not in sql for sql in statements)
