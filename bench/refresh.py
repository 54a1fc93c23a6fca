"""Benchmark: the indicator refresh against one hand-written set-based SQL statement, same data, same run.

    .venv/bin/python bench/refresh.py [--accounts 20000] [--days 90]

Seeds N accounts x 5 limit metrics x D days of snapshots into a PostgreSQL database of its own (rows
inserted in shuffled day order, as backfills and CSV imports deliver them), then times:
  - baseline: one SQL statement (regr_slope / DISTINCT ON) computing latest, utilization, slope, days to
    limit and the projected date for every account and metric, into a temporary table;
  - refresh: accounts.services.account_indicators_refresh over all accounts (indicators + engagement).
Prints seconds and accounts/s of each and the ratio, checks both agree, and shows the plan PostgreSQL
chose for the refresh's window query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE_SQL = """
CREATE TEMP TABLE bench_baseline AS
WITH params AS (SELECT %(as_of)s::date AS as_of, %(as_of)s::date - 29 AS start),
win AS (
    SELECT s.account_id, s.metric_id,
           count(*) AS n,
           regr_slope(s.value, (s.captured_on - p.as_of)::float8) AS slope
    FROM accounts_usagesnapshot s, params p
    WHERE s.captured_on BETWEEN p.start AND p.as_of
    GROUP BY s.account_id, s.metric_id
),
latest AS (
    SELECT DISTINCT ON (s.account_id, s.metric_id) s.account_id, s.metric_id, s.value, s.captured_on
    FROM accounts_usagesnapshot s, params p
    WHERE s.captured_on <= p.as_of
    ORDER BY s.account_id, s.metric_id, s.captured_on DESC
)
SELECT l.account_id, l.metric_id, l.value AS latest, pl."limit",
       l.value / NULLIF(pl."limit", 0) AS utilization,
       CASE WHEN w.n >= 7 THEN w.slope END AS slope,
       CASE WHEN pl."limit" IS NULL THEN NULL
            WHEN l.value >= pl."limit" THEN 0
            WHEN w.n >= 7 AND w.slope >= 1e-9 THEN (pl."limit" - l.value) / w.slope END AS days_to_limit
FROM latest l
JOIN accounts_account a ON a.id = l.account_id
LEFT JOIN accounts_planlimit pl ON pl.plan_id = a.plan_id AND pl.metric_id = l.metric_id
LEFT JOIN win w ON w.account_id = l.account_id AND w.metric_id = l.metric_id
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=2, help="Timed runs of each side; the best counts.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/upsell_bench"),
    )
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(n_accounts: int, days: int, as_of: dt.date) -> None:
    from django.db import connection

    from accounts.models import Account, Metric, Plan, UsageSnapshot

    metrics = list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order"))
    expected = n_accounts * len(metrics) * days
    if Account.objects.count() == n_accounts and UsageSnapshot.objects.count() == expected:
        print(f"data: reusing {n_accounts:,} accounts and {expected:,} snapshots")
        return
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE accounts_usagesnapshot, accounts_accountindicator, accounts_accountengagement, "
            "accounts_account CASCADE"
        )
    plans = list(Plan.objects.order_by("tier_rank"))
    limits = {(pl.plan_id, pl.metric_id): pl.limit for p in plans for pl in p.limits.all()}
    rng = random.Random(1)
    Account.objects.bulk_create(
        (
            Account(external_id=f"b-{i:06d}", name=f"Bench {i}", plan=rng.choices(plans, [70, 25, 5])[0], mrr=29)
            for i in range(n_accounts)
        ),
        batch_size=5000,
    )
    accounts = list(Account.objects.values_list("id", "plan_id"))
    # Shuffled day order: every day's rows for all accounts are written before the next (random) day,
    # which scatters each series over the table as backfills do.
    day_order = list(range(days))
    rng.shuffle(day_order)
    with connection.cursor() as cur:
        raw = cur.connection
        for d in day_order:
            day = (as_of - dt.timedelta(days=days - 1 - d)).isoformat()
            buf = io.StringIO()
            for account_id, plan_id in accounts:
                shape = account_id % 4  # flat, growing, spiky, shrinking
                for m in metrics:
                    limit = limits.get((plan_id, m.pk)) or 1000.0
                    base = limit * (0.3 + (account_id * 7 + m.pk) % 50 / 100)
                    if shape == 1:
                        value = base + limit * 0.006 * d
                    elif shape == 2:
                        value = base * (1.6 if (d + account_id) % 11 == 0 else 1.0)
                    elif shape == 3:
                        value = max(0.0, base - limit * 0.004 * d)
                    else:
                        value = base
                    buf.write(f"{account_id}\t{m.pk}\t{value:.2f}\t{day}\n")
            buf.seek(0)
            with raw.cursor().copy(
                "COPY accounts_usagesnapshot (account_id, metric_id, value, captured_on) FROM STDIN"
            ) as copy:
                copy.write(buf.read())
        cur.execute("VACUUM ANALYZE accounts_usagesnapshot")
    print(f"data: seeded {n_accounts:,} accounts and {expected:,} snapshots in {time.perf_counter() - t0:.1f} s")


def time_baseline(as_of: dt.date) -> float:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_baseline")
        t0 = time.perf_counter()
        cur.execute(BASELINE_SQL, {"as_of": as_of})
        elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_baseline")
    return elapsed


def time_refresh(as_of: dt.date) -> float:
    from accounts.services import account_indicators_refresh

    t0 = time.perf_counter()
    account_indicators_refresh(as_of=as_of)
    return time.perf_counter() - t0


def compare(as_of: dt.date) -> tuple[int, int]:
    """Rows where the refresh and the SQL disagree (beyond 1e-6 relative), and rows compared."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_baseline")
        cur.execute(BASELINE_SQL, {"as_of": as_of})
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE
                     abs(coalesce(i.latest, -1) - coalesce(b.latest, -1)) > 1e-6 * greatest(1, abs(b.latest))
                  OR abs(coalesce(i.slope_per_day, -1) - coalesce(b.slope, -1)) > 1e-6 * greatest(1, abs(b.slope))
                  OR abs(coalesce(i.days_to_limit, -1) - coalesce(b.days_to_limit, -1))
                     > 1e-6 * greatest(1, abs(b.days_to_limit))),
                   count(*)
            FROM bench_baseline b
            JOIN accounts_accountindicator i ON i.account_id = b.account_id AND i.metric_id = b.metric_id
            """
        )
        mismatched, compared = cur.fetchone()
        cur.execute("DROP TABLE bench_baseline")
    return mismatched, compared


def window_plan(as_of: dt.date) -> str:
    from accounts.models import Account, Metric
    from accounts.services import CHUNK_SIZE, window_snapshots, window_sums

    chunk = list(Account.objects.order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE])
    metric_ids = list(Metric.objects.filter(kind=Metric.Kind.LIMIT).values_list("pk", flat=True))
    plan = window_sums(window_snapshots(chunk, metric_ids, as_of), as_of).explain(analyze=True)
    # The chunk's 2,000 account ids would fill the screen.
    return re.sub(r"'\{[0-9,]{80,}\}'", f"'{{...{len(chunk)} account ids...}}'", plan)


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upsell_crm.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    as_of = dt.date(2026, 11, 20)
    seed(args.accounts, args.days, as_of)

    baseline, refresh = [], []
    for _ in range(args.runs):
        baseline.append(time_baseline(as_of))
        refresh.append(time_refresh(as_of))
    b, r = min(baseline), min(refresh)
    mismatched, compared = compare(as_of)
    n = args.accounts
    print()
    print(f"accounts: {n:,}   metrics: 5   days: {args.days}   runs: {args.runs} (best counts)")
    print(f"baseline SQL statement : {b:7.2f} s   {n / b:10,.0f} accounts/s")
    print(f"account_indicators_refresh: {r:7.2f} s   {n / r:10,.0f} accounts/s")
    print(f"ratio refresh / baseline: {r / b:.2f}x   (goal: 2x or less)")
    print(f"agreement: {compared - mismatched:,} of {compared:,} indicator rows equal")
    print()
    print("PostgreSQL's plan for the refresh's window query (one chunk):")
    print(window_plan(as_of))


if __name__ == "__main__":
    main()
