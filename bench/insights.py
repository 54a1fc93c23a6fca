"""Benchmark: "what precedes upgrades" against one plain SQL scan of the same events table, same run.

    .venv/bin/python bench/insights.py [--accounts 20000] [--events 12] [--snapshot-days 7] [--seed 1] [--repeat 3]

Creates a PostgreSQL database of its own (default upsell_bench_insights; BENCH_INSIGHTS_DATABASE_URL), migrates
it and seeds N accounts with 12 months (START to END) of:
  - engagement events: logins, feature uses, locked-feature hits and premium features used in a trial, about
    `--events` per account and month on average (some accounts much busier than others);
  - usage snapshots of the five limit-bearing metrics every `--snapshot-days` days;
  - MRR movements: first purchases of the accounts joining during the year, and upgrades (a quarter of them to
    the next tier), some churn. Three behaviours raise the monthly chance of an upgrade once shown: hitting
    locked features (×3), seats at the plan limit (×2), using the `automations` feature (×1.5); the others
    have no effect, so the ranking should put those three on top.
Then times, interleaved, `--repeat` times each:
  (a) accounts.insight_selectors.upgrade_predictors over the 12 months, as of END: every signal's lift
      (its queries and the pure math: what the page computes);
  (b) the baseline: SELECT feature, count(*) FROM accounts_engagementevent GROUP BY feature, one scan of the
      events table.
Prints the rows seeded and the build time, the median and best of each side and their ratio, the queries (a)
runs on the whole book and on a region (the count does not grow with the accounts), and the top signals.
The database is dropped at the end (`--keep` keeps it).
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
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/upsell_bench_insights"
START = dt.date(2025, 12, 1)
END = dt.date(2026, 11, 30)
"""The data's 12 months; the timed computation looks at them as of END (signals up to END − 90 days)."""
BASELINE_SQL = "SELECT feature, count(*) FROM accounts_engagementevent GROUP BY feature"

FEATURES = {"reporting": 0.9, "dashboards": 0.7, "search": 0.6, "exports": 0.5, "automations": 0.35, "sharing": 0.3}
"""Features every plan has, with the share of accounts that use each."""
PREMIUM = {"advanced_reporting": 1, "audit_log": 1, "sso": 2, "sandbox": 2}
"""Premium features by the lowest tier (0 = first) that includes them."""
BASE_UPGRADE = 0.012
"""Chance per paying account and month of an upgrade, before the planted effects."""
EFFECTS = {"locked": 3.0, "seats": 2.0, "automations": 1.5, "trial": 1.0}
REGIONS = ["EMEA", "North America", "APAC", "LATAM"]
INDUSTRIES = ["Software", "Retail", "Fintech", "Healthcare", "Education", "Media"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000, help="Accounts to seed (default 20,000).")
    parser.add_argument(
        "--events", type=float, default=12.0, help="Engagement events per account and month, on average (12)."
    )
    parser.add_argument("--snapshot-days", type=int, default=7, help="Days between usage snapshots (default 7).")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the data (default 1).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs of each side (default 3).")
    parser.add_argument("--keep", action="store_true", help="Keep the database at the end.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_INSIGHTS_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"PostgreSQL database of the benchmark, created and dropped by it (default {DEFAULT_DATABASE_URL}).",
    )
    return parser.parse_args()


def command_line(args) -> str:
    parts = [".venv/bin/python bench/insights.py", f"--accounts {args.accounts}", f"--events {args.events:g}"]
    parts += [f"--snapshot-days {args.snapshot_days}", f"--seed {args.seed}", f"--repeat {args.repeat}"]
    if args.database_url != DEFAULT_DATABASE_URL:
        parts.append(f"--database-url {args.database_url}")
    return " ".join(parts)


def _admin(url: str) -> tuple[str, str]:
    return url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1]


def database_create(url: str) -> None:
    import psycopg

    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


# --- The data --------------------------------------------------------------------------------------------


def _months() -> list[tuple[dt.date, dt.date]]:
    months, first = [], START
    while first <= END:
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        months.append((first, min(following - dt.timedelta(days=1), END)))
        first = following
    return months


def _at(rng: random.Random, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59)), tzinfo=dt.UTC)


def _day_in(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def build(*, accounts: int, seed: int, events_per_month: float, snapshot_days: int, owners=()) -> dict[str, int]:
    """Seed the current database with `accounts` accounts and their year of history (see the module's
    docstring); `owners` (user ids) are assigned in turn. Returns the row counts."""
    from accounts.models import Account, EngagementEvent, Metric, MrrMovement, Plan, UsageSnapshot
    from opportunities.demo import _insert

    plans = list(Plan.objects.prefetch_related("limits__metric").order_by("tier_rank"))
    limits = [{pl.metric.key: pl.limit for pl in plan.limits.all()} for plan in plans]
    metrics = list(Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order"))
    months = _months()
    owners = list(owners)
    rng = random.Random(seed)
    account_rows, histories = [], []
    for i in range(accounts):
        tier = rng.choices(range(len(plans)), [60, 30, 10, *([5] * (len(plans) - 3))][: len(plans)])[0]
        joined = None if rng.random() < 0.85 else _day_in(rng, START, END - dt.timedelta(days=60))
        first_purchase = joined or _day_in(rng, START - dt.timedelta(days=900), START - dt.timedelta(days=1))
        seats_bought = rng.choice([1, 1, 2, 3, 5, 8])
        engagement = rng.betavariate(2, 3)
        employees = rng.choice([6, 30, 120, 600, 2500])
        account_rows.append(
            Account(
                external_id=f"bi-{i:06d}",
                name=f"Bench insights {i}",
                plan=plans[tier],
                industry=rng.choice(INDUSTRIES),
                employees=employees,
                region=rng.choice(REGIONS),
                owner_id=owners[i % len(owners)] if owners else None,
                first_purchase_on=first_purchase,
                plan_started_on=first_purchase,
            )
        )
        histories.append((tier, joined, seats_bought, engagement))
    Account.objects.bulk_create(account_rows, batch_size=5000)

    moves, snapshot_rows = [], []

    def events_of(index: int, account: Account) -> Iterator[tuple]:
        tier, joined, seats_bought, engagement = histories[index]
        r = random.Random(f"{seed}-{index}")
        mrr = plans[tier].monthly_price * seats_bought
        if joined:
            moves.append((account.pk, joined, Decimal(0), mrr, None, plans[tier].pk))
        uses = [f for f, share in FEATURES.items() if r.random() < share]
        users = [f"user-{k:02d}" for k in range(1, 2 + int(engagement * 12))]
        locked_from = r.randrange(len(months)) if r.random() < 0.25 else None
        trial_month = r.randrange(len(months)) if r.random() < 0.08 else None
        # Seats used, in absolute terms: a start and a monthly growth; a fifth of the accounts grow fast.
        seats0 = r.uniform(0.3, 0.9) * (limits[tier].get("seats") or 50)
        seats_growth = r.uniform(0.05, 0.15) if r.random() < 0.2 else r.uniform(-0.01, 0.03)
        levels = {m.key: r.uniform(0.2, 0.8) for m in metrics}
        shown: set[str] = set()
        churned = False
        n = 0
        for k, (first, last) in enumerate(months):
            if joined and last < joined:
                continue
            begin = max(first, joined) if joined else first
            if churned:
                break
            # Usage: snapshots every `snapshot_days` days, against the tier in effect.
            for day_offset in range(0, (last - begin).days + 1, snapshot_days):
                day = begin + dt.timedelta(days=day_offset)
                t = (day - START).days / 30.4
                for metric in metrics:
                    limit = limits[tier].get(metric.key)
                    if metric.key == "seats":
                        value = round(seats0 * (1 + seats_growth) ** t)
                        if limit is not None and value >= limit:
                            shown.add("seats")
                    else:
                        value = round(levels[metric.key] * (limit or 1000) * r.uniform(0.9, 1.1), 1)
                    snapshot_rows.append((account.pk, metric.pk, max(0.0, float(value)), day))
            # Engagement.
            volume = events_per_month * engagement / 0.4 * r.uniform(0.6, 1.4)
            for _ in range(round(volume * 0.62)):
                n += 1
                yield (account.pk, "login", "", r.choice(users), _at(r, _day_in(r, begin, last)), f"bi-{index}-{n}")
            included = uses + [f for f, lowest in PREMIUM.items() if lowest <= tier and r.random() < 0.5]
            for _ in range(round(volume * 0.33) if included else 0):
                n += 1
                feature = r.choice(included)
                if feature == "automations":
                    shown.add("automations")
                at = _at(r, _day_in(r, begin, last))
                yield (account.pk, "feature_used", feature, r.choice(users), at, f"bi-{index}-{n}")
            locked = [f for f, lowest in PREMIUM.items() if lowest > tier]
            if locked and locked_from is not None and k >= locked_from:
                shown.add("locked")
                for _ in range(r.randint(1, 6)):
                    n += 1
                    at = _at(r, _day_in(r, begin, last))
                    yield (account.pk, "locked_feature_hit", r.choice(locked), r.choice(users), at, f"bi-{index}-{n}")
            if trial_month == k and tier + 1 < len(plans):
                shown.add("trial")
                trying = [f for f, lowest in PREMIUM.items() if lowest == tier + 1] or list(PREMIUM)
                for _ in range(r.randint(3, 15)):
                    n += 1
                    at = _at(r, _day_in(r, begin, last))
                    yield (account.pk, "trial_feature_used", r.choice(trying), r.choice(users), at, f"bi-{index}-{n}")
            # MRR: an upgrade with the planted effects of what was shown so far, or now and then a churn.
            chance = BASE_UPGRADE
            for signal in shown:
                chance *= EFFECTS[signal]
            roll = r.random()
            if roll < chance:
                day = _day_in(r, begin, last)
                before, tier_before = mrr, tier
                if tier + 1 < len(plans) and r.random() < 0.25:
                    tier += 1
                else:
                    seats_bought += r.randint(1, 3)
                mrr = plans[tier].monthly_price * seats_bought
                moves.append((account.pk, day, before, mrr, plans[tier_before].pk, plans[tier].pk))
            elif roll > 0.994:
                moves.append((account.pk, _day_in(r, begin, last), mrr, Decimal(0), plans[tier].pk, None))
                churned = True
        account.mrr = Decimal(0) if churned else mrr
        account.plan = plans[tier]
        account.status = Account.Status.CHURNED if churned else Account.Status.ACTIVE

    def all_events() -> Iterator[tuple]:
        for index, account in enumerate(account_rows):
            yield from events_of(index, account)

    names = ["account", "kind", "feature", "user_ref", "occurred_at", "external_id"]
    event_count = _insert(EngagementEvent, names, all_events())
    snapshot_count = _insert(UsageSnapshot, ["account", "metric", "value", "captured_on"], snapshot_rows)
    Account.objects.bulk_update(account_rows, ["mrr", "plan", "status"], batch_size=5000)
    kinds = {
        (False, True): MrrMovement.Kind.NEW,
        (True, True): MrrMovement.Kind.EXPANSION,
        (True, False): MrrMovement.Kind.CHURN,
    }
    MrrMovement.objects.bulk_create(
        (
            MrrMovement(
                account_id=account_id,
                occurred_on=on,
                kind=kinds[(before > 0, after > 0)],
                mrr_before=before,
                mrr_after=after,
                plan_before_id=plan_before,
                plan_after_id=plan_after,
                source=MrrMovement.Source.DEMO,
            )
            for account_id, on, before, after, plan_before, plan_after in sorted(moves, key=lambda m: (m[1], m[0]))
        ),
        batch_size=5000,
    )
    return {
        "accounts": len(account_rows),
        "events": event_count,
        "snapshots": snapshot_count,
        "movements": len(moves),
        "upgrades": sum(1 for m in moves if m[2] > 0 and m[3] > m[2]),
    }


# --- The run ---------------------------------------------------------------------------------------------


def count_queries(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def main() -> None:
    args = parse_args()
    print(f"command: {command_line(args)}")
    database_create(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "upsell_crm.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.core.management import call_command
    from django.db import connection

    from accounts.insight_selectors import upgrade_predictors
    from accounts.revenue_selectors import EVERYTHING, Segment

    try:
        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            pg_version = cur.fetchone()[0]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load} (1/5/15 min) at start; "
            f"PostgreSQL {pg_version}; Python {sys.version.split()[0]}"
        )
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        counts = build(
            accounts=args.accounts, seed=args.seed, events_per_month=args.events, snapshot_days=args.snapshot_days
        )
        with connection.cursor() as cur:
            for table in ("accounts_account", "accounts_mrrmovement", "accounts_engagementevent"):
                cur.execute(f"VACUUM ANALYZE {table}")
        print(
            f"data: {counts['accounts']:,} accounts, {counts['events']:,} engagement events, "
            f"{counts['snapshots']:,} usage snapshots, {counts['movements']:,} MRR movements "
            f"({counts['upgrades']:,} upgrades) from {START} to {END}, built in {time.perf_counter() - t0:.1f} s"
        )

        def predictors(segment: Segment = EVERYTHING):
            return upgrade_predictors(start=START, end=END, today=END, segment=segment)

        def baseline():
            with connection.cursor() as cur:
                cur.execute(BASELINE_SQL)
                return cur.fetchall()

        sides = {"upgrade_predictors": predictors, "baseline scan": baseline}
        queries = count_queries(predictors)  # also warms both sides up
        baseline()
        segment_queries = count_queries(lambda: predictors(Segment(region="EMEA")))
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeat):
            for name, fn in sides.items():  # interleaved, so a noisy moment hits both alike
                gc.collect()
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        median = {name: statistics.median(t) for name, t in times.items()}
        best = {name: min(t) for name, t in times.items()}
        print(f"timed: each side {args.repeat} times, interleaved; signals {START} .. {END - dt.timedelta(days=90)}")
        print()
        print(f"{'':<22}{'median':>10}{'best':>10}")
        for name in sides:
            print(f"{name:<22}{median[name]:>9.3f}s{best[name]:>9.3f}s")
        print()
        ratio = median["upgrade_predictors"] / median["baseline scan"]
        best_ratio = best["upgrade_predictors"] / best["baseline scan"]
        print(
            f"upgrade_predictors: {median['upgrade_predictors']:.2f} s (median), {ratio:.1f}x the baseline scan "
            f"(best {best_ratio:.1f}x); baseline = `{BASELINE_SQL}`"
        )
        print(f"queries: {queries} over the whole book, {segment_queries} over one region")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average at the end: {load}")
        print()
        overview = predictors()
        print(f"{'rank':>4}  {'signal':<58}{'with':>16}{'without':>18}{'lift':>7}  95% CI")
        for item in overview.signals:
            lift = item.lift
            figures = f"{lift.lift:>7.2f}  {lift.ci_low:.2f}-{lift.ci_high:.2f}" if lift.lift is not None else "      -"
            print(
                f"{item.rank or '-':>4}  {item.signal.label:<58}"
                f"{lift.exposed_upgraded:>7,}/{lift.exposed_n:<8,}{lift.unexposed_upgraded:>8,}/{lift.unexposed_n:<9,}"
                f"{figures}"
            )
        print(f"planted effects on the monthly chance of an upgrade: {EFFECTS} (1 = none)")
    finally:
        if not args.keep:
            database_drop(args.database_url)
            print(f"dropped {args.database_url.rsplit('/', 1)[1]}")


if __name__ == "__main__":
    main()
