"""Benchmark: the managers' revenue metrics against one SQL statement computing the same figures, same run.

    .venv/bin/python bench/metrics.py [--accounts 20000] [--seed 1] [--repeat 5]

Seeds N accounts with 12 months of MRR movements (new business, expansions, contractions, churn and
reactivations; a quarter of the accounts on annual plans, stored as annual price / 12) into a PostgreSQL
database of its own, then times, interleaved, `--repeat` times each over the last 12 months:
  (a) accounts.revenue_selectors.revenue_metrics: the API's and the page's figures (load + pure math);
  (b) accounts.revenue_selectors.revenue_overview: what the metrics page computes (the figures, plus MRR
      moved and NDR by month, and the cohorts);
  (c) one SQL statement computing the same fifteen figures in the database.
Prints the median and best wall time of each, the ratios of (a) and (b) to (c), the number of queries (a)
and (b) run (on the whole book and on a segment of it), and checks that (a) and (c) agree on every figure
to the cent over several periods: it exits with status 1 when they do not.

The database is its own (default upsell_bench_metrics, not bench/refresh.py's upsell_bench): seeding
truncates the accounts table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import statistics
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/upsell_bench_metrics"
END = dt.date(2026, 10, 31)
"""The last day of the data and of the timed period; the data's 12 months are the period's."""
START = dt.date(2025, 11, 1)
CHECK_PERIODS = (
    (START, END),  # the timed period: no movement before it, every MRR at start comes from the fallbacks
    (dt.date(2026, 8, 1), END),  # the last quarter: MRR at start from the movements before it
    (END.replace(day=1), END),  # the last month
    (dt.date(2024, 11, 1), dt.date(2025, 10, 31)),  # the year before the data: no movement in the period
)

# Every figure of DOMAIN.md ("Metrics") over the cohort paying at the beginning of `start`, replicating
# accounts/revenue.py: movements in (occurred_on, id) order; an account with no movement before a day has
# 0 if its first purchase is later, else what its first movement started from, or its current MRR without
# movements. Intermediate numbers keep 24 decimals; money and percentages are rounded half up at the end.
METRICS_SQL = """
WITH params AS (
    SELECT %(start)s::date AS start_on, %(end)s::date AS end_on, %(end)s::date - %(start)s::date + 1 AS days
),
moves AS (
    SELECT m.account_id, m.id, m.occurred_on, m.mrr_before, m.mrr_after,
           m.occurred_on BETWEEN p.start_on AND p.end_on AS in_period,
           CASE WHEN m.mrr_after > m.mrr_before AND m.mrr_before > 0 THEN 'upgrade'
                WHEN m.mrr_before = 0 AND m.mrr_after > 0 THEN 'reactivation'
                WHEN m.mrr_after > 0 AND m.mrr_after < m.mrr_before THEN 'contraction'
                WHEN m.mrr_before > 0 AND m.mrr_after = 0 THEN 'churn' END AS kind
    FROM accounts_mrrmovement m CROSS JOIN params p
),
history AS (
    SELECT mv.account_id,
           (array_agg(mv.mrr_before ORDER BY mv.occurred_on, mv.id))[1] AS first_before,
           (array_agg(mv.mrr_after ORDER BY mv.occurred_on DESC, mv.id DESC)
                FILTER (WHERE mv.occurred_on < p.start_on))[1] AS last_after_before_start,
           (array_agg(mv.mrr_after ORDER BY mv.occurred_on DESC, mv.id DESC)
                FILTER (WHERE mv.occurred_on <= p.end_on))[1] AS last_after_by_end,
           min(mv.occurred_on) FILTER (WHERE mv.kind = 'reactivation') AS first_paid_move_on,
           min(mv.occurred_on) FILTER (WHERE mv.kind = 'upgrade') AS first_upgrade_on,
           count(*) FILTER (WHERE mv.in_period AND mv.kind = 'upgrade') AS upgrades,
           count(*) FILTER (WHERE mv.in_period AND mv.kind = 'churn') AS churns,
           sum(mv.mrr_after - mv.mrr_before) FILTER (WHERE mv.in_period AND mv.kind = 'upgrade') AS expansion,
           sum(mv.mrr_after) FILTER (WHERE mv.in_period AND mv.kind = 'reactivation') AS reactivation,
           sum(mv.mrr_before - mv.mrr_after) FILTER (WHERE mv.in_period AND mv.kind = 'contraction') AS contraction,
           sum(mv.mrr_before) FILTER (WHERE mv.in_period AND mv.kind = 'churn') AS churned
    FROM moves mv CROSS JOIN params p
    GROUP BY mv.account_id
),
book AS (
    SELECT coalesce(h.last_after_before_start,
                    CASE WHEN a.first_purchase_on >= p.start_on THEN 0 ELSE coalesce(h.first_before, a.mrr) END
           ) AS at_start,
           coalesce(h.last_after_by_end,
                    CASE WHEN a.first_purchase_on > p.end_on THEN 0 ELSE coalesce(h.first_before, a.mrr) END
           ) AS at_end,
           h.upgrades, h.churns, h.expansion, h.reactivation, h.contraction, h.churned,
           CASE WHEN h.first_upgrade_on BETWEEN p.start_on AND p.end_on
                THEN h.first_upgrade_on - coalesce(a.first_purchase_on, h.first_paid_move_on) END AS days_to_upsell
    FROM accounts_account a CROSS JOIN params p
    LEFT JOIN history h ON h.account_id = a.id
),
totals AS (
    SELECT count(*) FILTER (WHERE at_start > 0) AS customers,
           coalesce(sum(at_start) FILTER (WHERE at_start > 0), 0)::numeric(48, 24) AS mrr_at_start,
           count(*) FILTER (WHERE at_start > 0 AND upgrades > 0) AS upgraded,
           coalesce(sum(upgrades) FILTER (WHERE at_start > 0), 0) AS upgrades,
           count(*) FILTER (WHERE at_start > 0 AND churns > 0) AS churned_customers,
           coalesce(sum(expansion) FILTER (WHERE at_start > 0), 0)::numeric(48, 24) AS expansion,
           coalesce(sum(reactivation) FILTER (WHERE at_start > 0), 0) AS reactivation,
           coalesce(sum(contraction) FILTER (WHERE at_start > 0), 0) AS contraction,
           coalesce(sum(churned) FILTER (WHERE at_start > 0), 0) AS churned,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_upsell)
               FILTER (WHERE at_start > 0 AND days_to_upsell IS NOT NULL) AS days_median,
           avg(days_to_upsell::numeric(48, 24))
               FILTER (WHERE at_start > 0 AND days_to_upsell IS NOT NULL) AS days_mean,
           count(*) FILTER (WHERE at_end > 0) AS paying,
           coalesce(sum(at_end) FILTER (WHERE at_end > 0), 0)::numeric(48, 24) AS paying_mrr
    FROM book
),
rates AS (
    SELECT t.*,
           t.paying_mrr / nullif(t.paying, 0) AS arpu,
           t.churned_customers::numeric(48, 24) / nullif(t.customers, 0) / (p.days::numeric(48, 24) / 30.4375)
               AS churn_fraction
    FROM totals t CROSS JOIN params p
)
SELECT customers AS customers_at_start,
       round(mrr_at_start, 2) AS mrr_at_start,
       upgraded AS upgraded_customers,
       round(upgraded::numeric(48, 24) * 100 / nullif(customers, 0), 2) AS conversion_rate,
       round(expansion, 2) AS expansion_mrr,
       round(reactivation, 2) AS reactivation_mrr,
       round(contraction, 2) AS contraction_mrr,
       round(churned, 2) AS churned_mrr,
       round((mrr_at_start + expansion + reactivation - contraction - churned) * 100 / nullif(mrr_at_start, 0), 2)
           AS ndr,
       round(expansion / nullif(upgrades, 0), 2) AS avg_upgrade_value,
       round(days_median::numeric, 2) AS time_to_upsell_days_median,
       round(days_mean, 2) AS time_to_upsell_days_mean,
       round(arpu, 2) AS arpu,
       round(churn_fraction * 100, 2) AS monthly_churn_rate,
       round(arpu / nullif(churn_fraction, 0), 2) AS ltv
FROM rates
"""

MONTHLY_RATES = {"churn": 0.012, "expansion": 0.03, "contraction": 0.015}
"""Chance per paying account and month of each movement; a churned account comes back with REACTIVATION."""
REACTIVATION = 0.08
SAME_DAY = 0.05
"""Chance that an expansion is followed the same day by another (seats added twice), and a churn by a
reactivation (a failed payment retried): same-day movements count in the order they were recorded."""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000, help="Accounts to seed (default 20,000).")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the data (default 1).")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs of each side (default 5).")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_METRICS_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"PostgreSQL database of the benchmark, created if missing (BENCH_METRICS_DATABASE_URL; "
        f"default {DEFAULT_DATABASE_URL}).",
    )
    return parser.parse_args()


def command_line(args) -> str:
    parts = [".venv/bin/python bench/metrics.py", f"--accounts {args.accounts}", f"--seed {args.seed}"]
    parts.append(f"--repeat {args.repeat}")
    if args.database_url != DEFAULT_DATABASE_URL:
        parts.append(f"--database-url {args.database_url}")
    return " ".join(parts)


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _day_in(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first day, last day) of each calendar month from `start` to `end`."""
    months, first = [], start
    while first <= end:
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        months.append((first, min(following - dt.timedelta(days=1), end)))
        first = following
    return months


def seed(n_accounts: int, seed_value: int) -> None:
    """Accounts and their MRR movements from START to END, in bulk (batches of 5,000 rows).

    68 % of the accounts bought before START (8 % of those had churned before it, 4 % have no first purchase
    date recorded), 27 % make their first purchase during the 12 months (a "new" movement), 5 % are trials that
    never paid. A paying account is on a plan (60/30/10 % by tier), billed monthly or annually (25 %: annual
    price / 12) for a number of seats; each month it may churn, expand (a tier up, or seats added), contract
    (seats removed or a tier down), and a churned one may come back.
    """
    from django.db import connection

    from accounts.models import Account, MrrMovement, Plan

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE accounts_mrrmovement, accounts_account CASCADE")
    plans = list(Plan.objects.order_by("tier_rank"))
    monthly = [p.monthly_price for p in plans]
    annual = [p.annual_mrr for p in plans]
    tier_weights = [60, 30, 10, *([5] * (len(plans) - 3))][: len(plans)]
    rng = random.Random(seed_value)
    months = _months(START, END)
    accounts: list[Account] = []
    moves_of: list[list[tuple[dt.date, str, Decimal, Decimal, int | None, int | None]]] = []
    for i in range(n_accounts):
        kind = rng.choices(["established", "joiner", "trial"], [68, 27, 5])[0]
        tier = rng.choices(range(len(plans)), tier_weights)[0]
        seats = rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 5, 8, 10, 15, 25])
        is_annual = rng.random() < 0.25

        def mrr(tier: int, seats: int, is_annual: bool = is_annual) -> Decimal:
            return (annual if is_annual else monthly)[tier] * seats

        moves: list[tuple[dt.date, str, Decimal, Decimal, int | None, int | None]] = []
        first_purchase: dt.date | None = None
        current = Decimal("0.00")
        joined = START - dt.timedelta(days=1)
        if kind == "established":
            first_purchase = _day_in(rng, START - dt.timedelta(days=3 * 365), START - dt.timedelta(days=1))
            current = Decimal("0.00") if rng.random() < 0.08 else mrr(tier, seats)
            if rng.random() < 0.04:
                first_purchase = None
        elif kind == "joiner":
            first_purchase = joined = _day_in(rng, START, END)
            current = mrr(tier, seats)
            moves.append((joined, "new", Decimal("0.00"), current, None, plans[tier].pk))
        if kind != "trial":
            ever_paid = current > 0 or first_purchase is not None
            for first, last in months:
                if last <= joined:
                    continue
                on = _day_in(rng, max(first, joined + dt.timedelta(days=1)), last)
                before_tier = tier
                roll = rng.random()
                if current == 0:
                    if ever_paid and roll < REACTIVATION / (3 if kind == "established" and not moves else 1):
                        current = mrr(tier, seats)
                        moves.append((on, "reactivation", Decimal("0.00"), current, None, plans[tier].pk))
                    continue
                if roll < MONTHLY_RATES["churn"]:
                    moves.append((on, "churn", current, Decimal("0.00"), plans[tier].pk, None))
                    current = Decimal("0.00")
                    if rng.random() < SAME_DAY:
                        current = mrr(tier, seats)
                        moves.append((on, "reactivation", Decimal("0.00"), current, None, plans[tier].pk))
                    continue
                roll -= MONTHLY_RATES["churn"]
                if roll < MONTHLY_RATES["expansion"]:
                    for _ in range(2 if rng.random() < SAME_DAY else 1):
                        if tier < len(plans) - 1 and rng.random() < 0.25:
                            tier += 1
                        else:
                            seats += rng.randint(1, 3)
                        after = mrr(tier, seats)
                        moves.append((on, "expansion", current, after, plans[before_tier].pk, plans[tier].pk))
                        current, before_tier = after, tier
                    continue
                roll -= MONTHLY_RATES["expansion"]
                if roll < MONTHLY_RATES["contraction"]:
                    if seats > 1:
                        seats -= rng.randint(1, min(2, seats - 1))
                    elif tier > 0:
                        tier -= 1
                    else:
                        continue
                    after = mrr(tier, seats)
                    moves.append((on, "contraction", current, after, plans[before_tier].pk, plans[tier].pk))
                    current = after
        accounts.append(
            Account(
                external_id=f"bm-{i:06d}",
                name=f"Bench metrics {i}",
                plan=plans[tier],
                mrr=current,
                billing_period=Account.BillingPeriod.ANNUAL if is_annual else Account.BillingPeriod.MONTHLY,
                industry=rng.choice(["SaaS", "Retail", "Fintech", "Health", "Education", "Media"]),
                employees=rng.choice([5, 30, 120, 600, 2500]),
                region=rng.choice(["EMEA", "NA", "APAC", "LATAM"]),
                first_purchase_on=first_purchase,
                status=(
                    Account.Status.TRIAL
                    if kind == "trial"
                    else Account.Status.ACTIVE
                    if current > 0
                    else Account.Status.CHURNED
                ),
            )
        )
        moves_of.append(moves)
    Account.objects.bulk_create(accounts, batch_size=5000)
    # Billing events arrive in time order: ids grow with the date, same-day movements of an account in order.
    rows = sorted(
        ((on, n, account.pk, kind, before, after, plan_before, plan_after)
         for account, moves in zip(accounts, moves_of, strict=True)
         for n, (on, kind, before, after, plan_before, plan_after) in enumerate(moves)),
        key=lambda row: (row[0], row[2], row[1]),
    )  # fmt: skip
    MrrMovement.objects.bulk_create(
        (
            MrrMovement(
                account_id=account_id,
                occurred_on=on,
                kind=kind,
                mrr_before=before,
                mrr_after=after,
                plan_before_id=plan_before,
                plan_after_id=plan_after,
                source=MrrMovement.Source.STRIPE,
            )
            for on, _, account_id, kind, before, after, plan_before, plan_after in rows
        ),
        batch_size=5000,
    )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE accounts_account")
        cur.execute("VACUUM ANALYZE accounts_mrrmovement")
    kinds = Counter(row[3] for row in rows)
    annual_share = sum(a.billing_period == Account.BillingPeriod.ANNUAL for a in accounts) / len(accounts)
    print(
        f"data: seeded {n_accounts:,} accounts and {len(rows):,} MRR movements "
        f"({', '.join(f'{k} {kinds[k]:,}' for k in ('new', 'expansion', 'contraction', 'churn', 'reactivation'))}) "
        f"from {START} to {END} in {time.perf_counter() - t0:.1f} s; {annual_share:.0%} on annual plans"
    )


def sql_figures(start: dt.date, end: dt.date) -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(METRICS_SQL, {"start": start, "end": end})
        names = [col.name for col in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def count_queries(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def differences(expected: dict, got: dict) -> list[str]:
    """Figures of `expected` that `got` does not match to the cent (or the 0.01 point)."""
    from accounts.revenue import FIGURE_KEYS

    out = []
    for key in FIGURE_KEYS:
        a, b = expected[key], got[key]
        undefined = a is None or b is None
        if (a is not b) if undefined else abs(Decimal(a) - Decimal(b)) >= Decimal("0.005"):
            out.append(f"{key}: revenue_metrics {a}, SQL {b}")
    return out


def main() -> None:
    args = parse_args()
    print(f"command: {command_line(args)}")
    ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upsell_crm.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Account, Plan
    from accounts.revenue import FIGURE_KEYS
    from accounts.revenue_selectors import Segment, revenue_metrics, revenue_overview

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load} (1/5/15 min) at start; "
        f"PostgreSQL {pg_version}; Python {sys.version.split()[0]}"
    )
    call_command("migrate", verbosity=0)
    seed(args.accounts, args.seed)

    sides = {
        "revenue_metrics": lambda: revenue_metrics(start=START, end=END),
        "revenue_overview": lambda: revenue_overview(start=START, end=END),
        "one SQL statement": lambda: sql_figures(START, END),
    }
    queries = {name: count_queries(fn) for name, fn in sides.items()}  # also warms every side up
    top = Plan.objects.order_by("-tier_rank").first()
    segment = Segment(plan_id=top.pk)
    segment_accounts = segment.apply(Account.objects.all()).count()
    segment_queries = {
        "revenue_metrics": count_queries(lambda: revenue_metrics(start=START, end=END, segment=segment)),
        "revenue_overview": count_queries(lambda: revenue_overview(start=START, end=END, segment=segment)),
    }

    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeat):
        for name, fn in sides.items():  # interleaved, so a noisy moment hits every side alike
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    sql = "one SQL statement"

    days = (END - START).days + 1
    print(f"period: {START} .. {END} ({days} days); each side run {args.repeat} times, interleaved")
    print()
    print(f"{'':<20}{'median':>10}{'best':>10}{'queries':>10}{'median vs SQL':>16}{'best vs SQL':>14}")
    for name in sides:
        print(
            f"{name:<20}{median[name]:>9.3f}s{best[name]:>9.3f}s{queries[name]:>10}"
            f"{median[name] / median[sql]:>15.1f}x{best[name] / best[sql]:>13.1f}x"
        )
    print()
    for name in ("revenue_metrics", "revenue_overview"):
        print(
            f"{name} {median[name] / median[sql]:.1f}x the SQL statement's time "
            f"(median; best {best[name] / best[sql]:.1f}x)"
        )
    print(
        f"queries: revenue_metrics {queries['revenue_metrics']}, revenue_overview {queries['revenue_overview']} "
        f"over {Account.objects.count():,} accounts; {segment_queries['revenue_metrics']} and "
        f"{segment_queries['revenue_overview']} over the {segment_accounts:,} accounts of plan {top.name} "
        f"(a segment): the count does not grow with the accounts"
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load}")

    print()
    metrics = revenue_metrics(start=START, end=END).as_dict()
    overview = revenue_overview(start=START, end=END).metrics.as_dict()
    figures = sql_figures(START, END)
    print(f"{'figure, ' + str(START) + ' .. ' + str(END):<40}{'revenue_metrics':>18}{'SQL':>14}")
    for key in FIGURE_KEYS:
        print(f"{key:<40}{metrics[key]!s:>18}{figures[key]!s:>14}")
    print()
    problems = [
        f"revenue_overview differs from revenue_metrics on {k}" for k in FIGURE_KEYS if overview[k] != metrics[k]
    ]
    compared = 0
    for start, end in CHECK_PERIODS:
        found = differences(revenue_metrics(start=start, end=end).as_dict(), sql_figures(start, end))
        compared += len(FIGURE_KEYS)
        verdict = "equal" if not found else f"{len(found)} differ"
        print(f"agreement {start} .. {end}: {len(FIGURE_KEYS) - len(found)} of {len(FIGURE_KEYS)} figures {verdict}")
        problems += [f"  {start} .. {end} {line}" for line in found]
    if problems:
        print("MISMATCH:")
        print("\n".join(problems))
        sys.exit(1)
    print(f"all {compared} figures equal (revenue_metrics and the SQL statement, {len(CHECK_PERIODS)} periods)")


if __name__ == "__main__":
    main()
