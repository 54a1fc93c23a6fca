"""The app-side steps of the fault scenarios, run in a process of their own against a scenario's database:

    python -m tests.faults.app_commands <command> '<JSON keyword arguments>'

prints one line of JSON. The scenarios' own process stays out of that database (pytest-django's test
database is another one), so whatever needs the app's models and services goes through here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import sys
from decimal import Decimal

import django

# 30 days of seats, storage and projects per account up to %s (a date), from a hash of the account and metric.
USAGE_SQL = """
INSERT INTO accounts_usagesnapshot (account_id, metric_id, value, captured_on)
SELECT a.id, m.id,
       CASE m.key
           WHEN 'seats' THEN 1 + mod(h, 4) + CASE WHEN day > 20 AND mod(h + day, 2) = 0 THEN 1 ELSE 0 END
           WHEN 'storage_gb' THEN greatest(0, round(
               (1 + mod(h, 700) / 100.0 + (mod(h / 7, 27) - 2) / 100.0 * day
                + (mod(abs(hashtext(a.id || ':' || day)), 60) - 30) / 100.0)::numeric, 3))
           ELSE 1 + mod(h, 6) + day / 10
       END,
       %s::date - (29 - day)
FROM accounts_account a
CROSS JOIN accounts_metric m
CROSS JOIN generate_series(0, 29) AS day
CROSS JOIN LATERAL (SELECT abs(hashtext(a.external_id || m.key)) AS h) hashed
WHERE m.key IN ('seats', 'storage_gb', 'projects') AND a.id = ANY(%s)
"""


def seed(*, accounts: int, as_of: str, username: str, password: str, refreshed_as_of: str | None = None) -> dict:
    """A CSM owning `accounts` accounts with 30 days of usage up to `as_of`, some logins, and an API token.

    Usage (seats, storage with noise, projects) starts and grows at a pace of its own per account and metric,
    so that the indicators differ from one account to the next; it is written in one INSERT ... SELECT.
    With `refreshed_as_of`, the indicators are refreshed once as of that day, as an earlier pipeline run would
    have left them.
    """
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Account, EngagementEvent, Plan
    from accounts.services import account_indicators_refresh
    from accounts.tokens import api_token_create

    end = dt.date.fromisoformat(as_of)
    user = User.objects.create_user(username, email=f"{username}@example.com", password=password)
    user.groups.add(Group.objects.get(name="CSM"))
    _, token = api_token_create(name="fault scenarios")
    plans = list(Plan.objects.filter(name__in=["Basic", "Pro"]).order_by("tier_rank"))
    created = Account.objects.bulk_create(
        [
            Account(
                external_id=f"acct-{i:05d}",
                name=f"Company {i}",
                plan=plans[i % len(plans)],
                mrr=Decimal("29.00") if i % len(plans) == 0 else Decimal("99.00"),
                industry=["Software", "Retail", "Health"][i % 3],
                region=["EMEA", "NA", "APAC"][i % 3],
                employees=10 + i % 90,
                owner=user,
                first_purchase_on=end - dt.timedelta(days=400),
                plan_started_on=end - dt.timedelta(days=200),
            )
            for i in range(accounts)
        ],
        batch_size=2000,
    )
    events = []
    for account in created:
        rng = random.Random(account.external_id)
        if rng.random() < 0.4:
            events += [
                EngagementEvent(
                    account=account,
                    kind=EngagementEvent.Kind.LOGIN,
                    user_ref=f"u{n % 3}",
                    occurred_at=timezone.make_aware(dt.datetime.combine(end, dt.time(9)) - dt.timedelta(days=n * 5)),
                    external_id=f"{account.external_id}-login-{n}",
                )
                for n in range(rng.randint(1, 10))
            ]
    with transaction.atomic(), connection.cursor() as cursor:
        # The rows reference accounts just created and metrics just read: the foreign-key triggers, which
        # would check them one by one, are off for this transaction (they took three quarters of the time).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(USAGE_SQL, [end, [a.pk for a in created]])
        snapshots = cursor.rowcount
    EngagementEvent.objects.bulk_create(events, batch_size=5000)
    if refreshed_as_of:
        account_indicators_refresh(as_of=dt.date.fromisoformat(refreshed_as_of))
    return {
        "token": token,
        "account_ids": [a.pk for a in created],
        "external_ids": [a.external_id for a in created],
        "snapshots": snapshots,
        "events": len(events),
    }


def compare_with_clean_recompute(*, as_of: str) -> dict:
    """Every AccountIndicator and AccountEngagement row against a recompute from scratch, as of `as_of`.

    The recompute runs in a transaction that is rolled back: the stored rows are deleted, refreshed into
    empty tables by the same service, read, and put back as they were.
    """
    from django.db import transaction

    from accounts.models import AccountEngagement, AccountIndicator
    from accounts.services import account_indicators_refresh

    stored = _indicator_rows(AccountIndicator, AccountEngagement)
    with transaction.atomic():
        AccountIndicator.objects.all().delete()
        AccountEngagement.objects.all().delete()
        account_indicators_refresh(as_of=dt.date.fromisoformat(as_of))
        clean = _indicator_rows(AccountIndicator, AccountEngagement)
        transaction.set_rollback(True)
    differences = [
        {"row": key, "stored": stored.get(key), "clean": clean.get(key)}
        for key in sorted(stored.keys() | clean.keys())
        if not _same(stored.get(key), clean.get(key))
    ]
    return {
        "stored": len(stored),
        "clean": len(clean),
        "differences": len(differences),
        "examples": differences[:5],
    }


def _indicator_rows(*models) -> dict:
    rows = {}
    for model in models:
        names = [f.attname for f in model._meta.concrete_fields if f.name not in ("id", "refreshed_at")]
        key_names = ["account_id", "metric_id"] if "metric_id" in names else ["account_id"]
        for row in model.objects.values(*names):
            rows[f"{model.__name__}:" + "/".join(str(row[k]) for k in key_names)] = row
    return rows


def _same(stored: dict | None, clean: dict | None) -> bool:
    """Equal field by field; floats to 1e-9 relative (sums may be added up in another order by the database)."""
    if stored is None or clean is None:
        return stored is clean
    for name, value in clean.items():
        other = stored[name]
        if isinstance(value, float) and isinstance(other, float):
            if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif value != other:
            return False
    return True


COMMANDS = {"seed": seed, "compare_with_clean_recompute": compare_with_clean_recompute}


def main() -> None:
    django.setup()
    command, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(COMMANDS[command](**arguments), default=str))


if __name__ == "__main__":
    main()
