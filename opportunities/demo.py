"""Demo data: a realistic, deterministic book of accounts to explore the product with (`manage.py seed_demo`).

Everything is drawn from `random.Random` streams seeded with `seed` (one stream per account and purpose, so an
account's data does not depend on how many accounts come before it in a batch) and dated relative to
`as_of`, never to the clock: the same seed and date give the same rows.

Building is pure (specs in memory), writing is set-based: accounts, MRR movements and opportunities go in
with bulk_create, the two big tables (usage snapshots, engagement events) stream in batches, with COPY on
PostgreSQL. The plans, metrics and lost reasons are read from the catalogue the migrations installed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction

from accounts import indicators as ind
from accounts.models import Account, EngagementEvent, Metric, MrrMovement, Plan, PlanLimit, UsageSnapshot
from accounts.roles import Role
from opportunities.models import STAGE_ORDER, Collaborator, LostReason, Opportunity, OpportunityEvent, Outcome, Stage
from playbooks.models import Rule
from playbooks.rules import MetricFacts, describe_metric, describe_time_to_limit

USAGE_DAYS = 120
"""Days of usage history per account and limit-bearing metric, ending on as_of."""
EVENT_DAYS = 60
"""Days of engagement events: the 30-day window and the previous one, so trends have a baseline."""
HISTORY_DAYS = 365
"""MRR changes after the first purchase fall in the last 12 months."""
MAX_TENURE_DAYS = 3 * 365
BIG_DEMO_ACCOUNTS = 5000
"""Above this many accounts, fewer engagement events per account keep the tables a sane size."""
BATCH_SIZE = 5000

MONTHLY = Account.BillingPeriod.MONTHLY
ANNUAL = Account.BillingPeriod.ANNUAL
CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# username, first name, last name, role
DEMO_USERS = [
    ("csm1", "Jordan", "Alvarez", Role.CSM),
    ("csm2", "Priya", "Raman", Role.CSM),
    ("csm3", "Tom", "Becker", Role.CSM),
    ("csm4", "Aiko", "Tanaka", Role.CSM),
    ("manager", "Maria", "Lopez", Role.MANAGER),
    ("admin", "Sam", "Okafor", Role.ADMIN),
    ("sales1", "Dana", "Reyes", Role.SALES),
]
DEMO_USERNAMES = [username for username, *_ in DEMO_USERS]

# Books are uneven on purpose (a senior CSM carries more), and a few accounts wait for an owner.
OWNERS = [("csm1", 30), ("csm2", 26), ("csm3", 24), ("csm4", 17), (None, 3)]
INDUSTRIES = [
    ("Software", 22),
    ("Fintech", 12),
    ("Healthcare", 12),
    ("Retail", 12),
    ("Education", 10),
    ("Media", 10),
    ("Logistics", 10),
    ("Manufacturing", 12),
]
REGIONS = [("North America", 42), ("EMEA", 33), ("APAC", 17), ("LATAM", 8)]

NAME_ROOTS = [
    "Alder", "Atlas", "Aurora", "Beacon", "Birch", "Bluepeak", "Bramble", "Brightwave", "Cascade", "Cedar",
    "Cobalt", "Copperleaf", "Crescent", "Delta", "Driftwood", "Ember", "Evergreen", "Fairhaven", "Falcon",
    "Fjord", "Foxglove", "Garnet", "Glacier", "Granite", "Halcyon", "Harbor", "Heron", "Highland", "Indigo",
    "Ironbark", "Jasper", "Juniper", "Kestrel", "Keystone", "Lighthouse", "Lumen", "Maple", "Meridian",
    "Mosaic", "Nimbus", "Northwind", "Nova", "Oakridge", "Onyx", "Orbit", "Pinnacle", "Pioneer", "Polaris",
    "Quartz", "Quill", "Redwood", "Riverbend", "Rowan", "Sapphire", "Sequoia", "Silverline", "Stonebridge",
    "Summit", "Tandem", "Tidewater", "Trailhead", "Upland", "Vantage", "Verdant", "Vireo", "Westbrook",
    "Willow", "Wren", "Yarrow", "Zenith", "Zephyr",
]  # fmt: skip
INDUSTRY_NOUNS = {
    "Software": ["Software", "Labs", "Systems", "Cloud", "Data", "Apps"],
    "Fintech": ["Pay", "Capital", "Finance", "Ledger", "Lending", "Wallet"],
    "Healthcare": ["Health", "Care", "Medical", "Clinics", "Diagnostics", "Therapeutics"],
    "Retail": ["Goods", "Outfitters", "Market", "Supply", "Boutique", "Stores"],
    "Education": ["Learning", "Academy", "Tutors", "Schools", "Education", "Campus"],
    "Media": ["Media", "Studios", "Press", "Broadcasting", "Publishing", "Pictures"],
    "Logistics": ["Freight", "Logistics", "Shipping", "Transport", "Couriers", "Fleet"],
    "Manufacturing": ["Manufacturing", "Industries", "Works", "Fabrication", "Components", "Machining"],
}
NAME_SUFFIXES = ["Group", "Partners", "Co.", "Inc.", "Ltd", "Collective", "Holdings", "International"]

# Features everyone has, and premium features by the lowest tier (0 = first plan) that includes them.
BASE_FEATURES = ["reporting", "dashboards", "exports", "automations", "search", "sharing"]
PREMIUM_FEATURES = {"advanced_reporting": 1, "audit_log": 1, "sso": 2, "sandbox": 2, "custom_reporting": 2}

# Metrics whose limit the product enforces (usage stops at the limit); the others can run over it.
HARD_LIMITS = {"seats", "integrations"}
FRACTIONAL = {"storage_gb"}
FOCUS_WEIGHTS = {"storage_gb": 30, "seats": 25, "api_calls": 20, "projects": 15, "integrations": 10}

# The signals demo reasons are written from, named like the default rules (playbooks 0003) so that a
# reason links to its rule when that rule exists: name, metric, signal, threshold, points.
DEMO_RULES = [
    ("Seats at 90% or more", "seats", "utilization", 0.9, 40),
    ("Seats limit within 30 days", "seats", "days_to_limit", 30, 30),
    ("Storage at 80% or more", "storage_gb", "utilization", 0.8, 35),
    ("Storage limit within 30 days", "storage_gb", "days_to_limit", 30, 30),
    ("Projects at 80% or more", "projects", "utilization", 0.8, 25),
    ("API calls at 80% or more", "api_calls", "utilization", 0.8, 25),
    ("Integrations at the limit", "integrations", "utilization", 1.0, 25),
    ("5+ locked-feature hits", None, "locked_feature_hits", 5, 20),
    ("Logins in the top quartile", None, "logins_per_week", 10, 15),
    ("Premium features used in a trial", None, "trial_feature_uses", 3, 25),
]

PROFILES = [("hot", 20), ("warm", 25), ("calm", 40), ("cooling", 15)]
ENGAGEMENT = {
    # profile: (engagement low, high, trend low, high); trend > 0 means more activity in the last 30 days
    "hot": (0.55, 1.0, 0.0, 0.6),
    "warm": (0.35, 0.8, -0.1, 0.4),
    "calm": (0.1, 0.6, -0.2, 0.2),
    "cooling": (0.05, 0.3, -0.7, -0.2),
    "trial": (0.4, 0.9, 0.2, 0.8),
}

LOST_DETAILS = {
    "price": "Liked the plan but the jump in price was more than they could justify.",
    "no_budget": "Budget is frozen until next fiscal year.",
    "no_need": "They cleaned up old data and are back under the limit.",
    "timing": "Mid-migration to a new CRM; asked to revisit next quarter.",
    "competitor": "Moving the analytics team to a competitor's bundle.",
    "missing_feature": "Needs an on-premise option we do not offer.",
    "no_decision": "Champion left the company; no one else owns the tool.",
    "other": "Merged with another customer of ours; seats consolidated there.",
}
GOALS = [
    "Roll the product out to the whole support team this quarter",
    "Consolidate reporting from three tools into one",
    "Onboard the new EMEA office",
    "Automate the weekly client reports",
    "Pass the SOC 2 audit with proper access logs",
    "Give finance self-serve dashboards",
]
BLOCKERS = [
    "Procurement review takes about three weeks",
    "Security questionnaire pending",
    "None raised",
    "Budget owner is on leave until the end of the month",
    "Wants to see the storage growth hold for another month",
]
DECISION_MAKERS = ["COO", "VP Operations", "Head of Data", "CFO", "CTO", "Director of Customer Support"]
TIMELINES = ["This month", "This quarter", "Next quarter", "Before renewal"]


class DemoDataError(Exception):
    """The demo cannot be built on this database (e.g. the plan catalogue is missing)."""


# --- The catalogue, as plain data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    """A plan of the catalogue, by position (0 = cheapest)."""

    index: int
    id: int
    name: str
    monthly_price: Decimal
    annual_price: Decimal
    limits: dict[str, float | None]

    def mrr(self, billing_period: str) -> Decimal:
        """The plan's MRR: monthly price, or annual price / 12 when billed annually."""
        if billing_period == ANNUAL:
            return (self.annual_price / 12).quantize(CENT)
        return self.monthly_price


@dataclass(frozen=True, slots=True)
class MetricInfo:
    id: int
    key: str
    label: str
    unit: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    tiers: list[Tier]
    metrics: list[MetricInfo]
    lost_reasons: list[tuple[int, str]]
    rule_ids: dict[str, int]

    @property
    def top(self) -> int:
        return len(self.tiers) - 1


def demo_catalogue() -> Catalogue:
    """The installed plans (active, by tier), limit-bearing metrics, lost reasons and rule ids: a few queries."""
    plans = list(Plan.objects.active().order_by("tier_rank"))
    if len(plans) < 2:
        raise DemoDataError("The demo needs at least two active plans; run `manage.py migrate` first.")
    metrics = [
        MetricInfo(id=m.pk, key=m.key, label=m.label, unit=m.unit)
        for m in Metric.objects.filter(kind=Metric.Kind.LIMIT).order_by("display_order", "key")
    ]
    limits: dict[int, dict[str, float | None]] = {p.pk: {} for p in plans}
    for plan_id, key, limit in PlanLimit.objects.filter(plan__in=plans).values_list("plan_id", "metric__key", "limit"):
        limits[plan_id][key] = limit
    tiers = [
        Tier(
            index=i,
            id=p.pk,
            name=p.name,
            monthly_price=p.monthly_price,
            annual_price=p.annual_price,
            # A metric the plan does not list is unlimited on it.
            limits={m.key: limits[p.pk].get(m.key) for m in metrics},
        )
        for i, p in enumerate(plans)
    ]
    lost_reasons = list(
        LostReason.objects.filter(active=True).order_by("display_order", "key").values_list("pk", "key")
    )
    if not lost_reasons:
        raise DemoDataError("The demo needs lost reasons; run `manage.py migrate` first.")
    rule_ids = dict(Rule.objects.values_list("name", "pk"))
    return Catalogue(tiers=tiers, metrics=metrics, lost_reasons=lost_reasons, rule_ids=rule_ids)


# --- Accounts and their MRR history (pure) -------------------------------------------------------------


@dataclass(slots=True)
class Move:
    on: dt.date
    kind: str
    mrr_before: Decimal
    mrr_after: Decimal
    tier_before: int | None
    tier_after: int | None


@dataclass(slots=True)
class AccountSpec:
    index: int
    external_id: str
    name: str
    industry: str
    region: str
    employees: int
    owner: str | None
    billing: str
    trial: bool
    start_tier: int
    first_purchase_on: dt.date | None
    trial_started_on: dt.date | None = None
    moves: list[Move] = field(default_factory=list)
    tier: int | None = None
    mrr: Decimal = ZERO
    status: str = Account.Status.ACTIVE
    plan_started_on: dt.date | None = None
    role: str = ""
    """What the demo opens for it: 'open:<stage>', 'won', 'lost', 'snoozed', 'cleared', or ''."""
    won_on: dt.date | None = None
    profile: str = "calm"
    engagement: float = 0.3
    trend: float = 0.0
    focus: dict[str, str] = field(default_factory=dict)
    """Metric key -> shape for the metrics that tell this account's story; the rest are background."""

    @property
    def usage_tier(self) -> int:
        """The plan whose limits usage is shaped against: the current one, or the last one paid for."""
        if self.tier is not None:
            return self.tier
        paid = [m.tier_before for m in self.moves if m.tier_before is not None]
        return paid[-1] if paid else self.start_tier

    @property
    def active_from(self) -> dt.date | None:
        return self.trial_started_on or self.first_purchase_on

    @property
    def churned_on(self) -> dt.date | None:
        if self.status == Account.Status.CHURNED and self.moves:
            return self.moves[-1].on
        return None


def _rng(seed: int, purpose: str, index: int = 0) -> random.Random:
    # Demo data, not secrets: a seeded, reproducible generator is the point.
    return random.Random(f"{seed}:{purpose}:{index}")  # noqa: S311  # nosec B311


def _pick(rng: random.Random, weighted: list[tuple]) -> object:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _tier_weights(employees: int, tiers: int) -> list[float]:
    """Mostly the first plan, more of the higher ones for bigger companies."""
    bands = ((10, 0.12), (50, 0.25), (200, 0.4), (1000, 0.6))
    base = next((weight for upper, weight in bands if employees <= upper), 0.9)
    return [base**k for k in range(tiers)]


def company_name(rng: random.Random, industry: str, taken: set[str]) -> str:
    """A made-up company name from word lists, unique within `taken` (which it updates)."""
    nouns = INDUSTRY_NOUNS.get(industry, ["Group"])
    name = ""
    for _ in range(50):
        root, noun = rng.choice(NAME_ROOTS), rng.choice(nouns)
        pattern = rng.random()
        if pattern < 0.6:
            name = f"{root} {noun}"
        elif pattern < 0.85:
            name = f"{root} {noun} {rng.choice(NAME_SUFFIXES)}"
        else:
            name = f"{root} & {rng.choice(NAME_ROOTS)} {noun}"
        if name not in taken:
            break
    else:
        name = f"{name} {len(taken) + 1}"
    taken.add(name)
    return name


def _account_base(seed: int, index: int, as_of: dt.date, tiers: list[Tier], taken: set[str]) -> AccountSpec:
    rng = _rng(seed, "account", index)
    industry = _pick(rng, INDUSTRIES)
    # 3 to 5,000 people, most of them small: about a third up to 10, one in eight above 1,000.
    employees = round(3 * (5000 / 3) ** (rng.random() ** 1.8))
    spec = AccountSpec(
        index=index,
        external_id=f"acct-{index:05d}",
        name=company_name(rng, industry, taken),
        industry=industry,
        region=_pick(rng, REGIONS),
        employees=employees,
        owner=_pick(rng, OWNERS),
        billing=ANNUAL if rng.random() < (0.35 if employees > 200 else 0.22) else MONTHLY,
        trial=rng.random() < 0.07,
        start_tier=rng.choices(range(len(tiers)), weights=_tier_weights(employees, len(tiers)))[0],
        # A third joined in the last 12 months (the recent cohorts), the rest up to 3 years ago.
        first_purchase_on=as_of
        - dt.timedelta(
            days=rng.randint(0, HISTORY_DAYS - 1) if rng.random() < 0.3 else rng.randint(HISTORY_DAYS, MAX_TENURE_DAYS)
        ),
    )
    if spec.trial:
        # A prospect trialling a paid tier above the first one (so there are premium features to try).
        spec.start_tier = rng.choices(range(1, len(tiers)), weights=[3**-k for k in range(len(tiers) - 1)])[0]
        spec.billing = MONTHLY
        spec.first_purchase_on = None
        spec.trial_started_on = as_of - dt.timedelta(days=rng.randint(0, 13))
    return spec


def mrr_history(
    rng: random.Random,
    *,
    tiers: list[Tier],
    start_tier: int,
    billing: str,
    first_purchase_on: dt.date,
    as_of: dt.date,
    upgrade_on: dt.date | None = None,
) -> list[Move]:
    """The account's MRR movements: 'new' on the first purchase, then changes in the last 12 months.

    Each movement starts from the previous one's MRR and its kind follows from the amounts (as
    accounts.models.movement_kind defines it). With `upgrade_on`, the history is one upgrade on that day.
    """
    top = len(tiers) - 1
    tier = start_tier
    mrr = tiers[tier].mrr(billing)
    moves = [Move(first_purchase_on, MrrMovement.Kind.NEW, ZERO, mrr, None, tier)]
    if upgrade_on is not None:
        moves.append(Move(upgrade_on, MrrMovement.Kind.EXPANSION, mrr, tiers[tier + 1].mrr(billing), tier, tier + 1))
        return moves
    lo = max(first_purchase_on + dt.timedelta(days=30), as_of - dt.timedelta(days=HISTORY_DAYS - 1))
    span = (as_of - lo).days
    if span < 0:
        return moves
    count = min(rng.choices([0, 1, 2, 3], weights=[72, 22, 5, 1])[0], span + 1)
    paying, last_tier = True, tier
    for offset in sorted(rng.sample(range(span + 1), count)):
        on = lo + dt.timedelta(days=offset)
        before_tier, before = (tier if paying else None), mrr
        if paying:
            options = [("churn", 20)]
            if tier < top:
                options.append(("up", 35))
            if tier > 0:
                options.append(("down", 15))
            change = _pick(rng, options)
            if change == "up":
                tier = min(top, tier + (2 if rng.random() < 0.15 else 1))
                kind = MrrMovement.Kind.EXPANSION
            elif change == "down":
                tier -= 1
                kind = MrrMovement.Kind.CONTRACTION
            else:
                last_tier, paying = tier, False
                kind = MrrMovement.Kind.CHURN
        else:
            tier = last_tier if rng.random() < 0.6 else 0
            paying = True
            kind = MrrMovement.Kind.REACTIVATION
        mrr = tiers[tier].mrr(billing) if paying else ZERO
        moves.append(Move(on, kind, before, mrr, before_tier, tier if paying else None))
    return moves


def _settle(spec: AccountSpec) -> None:
    """Set the account's current plan, MRR, status and plan start from the last movement."""
    if spec.trial:
        spec.tier, spec.mrr, spec.status = spec.start_tier, ZERO, Account.Status.TRIAL
        spec.plan_started_on = spec.trial_started_on
        return
    last = spec.moves[-1]
    spec.tier, spec.mrr = last.tier_after, last.mrr_after
    spec.status = Account.Status.ACTIVE if last.mrr_after > 0 else Account.Status.CHURNED
    spec.plan_started_on = last.on if last.mrr_after > 0 else None


def demo_accounts_build(*, seed: int, as_of: dt.date, count: int, tiers: list[Tier]) -> list[AccountSpec]:
    """The demo's accounts with their MRR histories, the opportunity each one gets (if any) and its usage story."""
    taken: set[str] = set()
    specs = [_account_base(seed, i, as_of, tiers, taken) for i in range(1, count + 1)]
    top = len(tiers) - 1
    roles_rng = _rng(seed, "roles")
    quotas = _role_quotas(count)

    # Won opportunities are upgrades that happened, so they are chosen before the histories are drawn.
    won_pool = [s for s in specs if not s.trial and s.owner and s.start_tier < top]
    for spec in roles_rng.sample(won_pool, min(quotas.pop("won"), len(won_pool))):
        spec.role = "won"
        spec.won_on = as_of - dt.timedelta(days=roles_rng.randint(3, 200))
        if spec.first_purchase_on > spec.won_on - dt.timedelta(days=60):
            spec.first_purchase_on = spec.won_on - dt.timedelta(days=roles_rng.randint(60, 400))

    for spec in specs:
        if not spec.trial:
            spec.moves = mrr_history(
                _rng(seed, "mrr", spec.index),
                tiers=tiers,
                start_tier=spec.start_tier,
                billing=spec.billing,
                first_purchase_on=spec.first_purchase_on,
                as_of=as_of,
                upgrade_on=spec.won_on,
            )
        _settle(spec)

    # The rest go to paying accounts below the top tier; one of each first, so even a tiny demo has them all.
    # Their plan has not changed since well before the opportunity began, so its target is still the next tier.
    settled = as_of - dt.timedelta(days=150)
    pool = [
        s
        for s in specs
        if not s.role
        and s.owner
        and s.status == Account.Status.ACTIVE
        and s.tier < top
        and s.plan_started_on <= settled
    ]
    roles_rng.shuffle(pool)
    wanted = [role for role, n in quotas.items() if n > 0]
    order = wanted + [role for role, n in quotas.items() for _ in range(n - 1)]
    for spec, role in zip(pool, order, strict=False):
        spec.role = role

    for spec in specs:
        _shape(seed, spec, tiers)
    return specs


def _role_quotas(count: int) -> dict[str, int]:
    def share(fraction: float, least: int) -> int:
        return max(least, round(count * fraction))

    return {
        "won": share(0.02, 2),
        "open:identify": share(0.02, 2),
        "open:qualify": share(0.014, 1),
        "open:present": share(0.01, 1),
        "open:close": share(0.006, 1),
        "lost": share(0.012, 1),
        "snoozed": share(0.008, 1),
        "cleared": share(0.008, 1),
    }


def _shape(seed: int, spec: AccountSpec, tiers: list[Tier]) -> None:
    """Choose the account's usage story (profile), engagement level and the metrics that carry the story."""
    rng = _rng(seed, "profile", spec.index)
    if spec.role.startswith("open"):
        profile = "hot"
    elif spec.role in ("lost", "snoozed"):
        profile = "warm"
    elif spec.role in ("won", "cleared"):
        profile = "calm"
    elif spec.trial:
        profile = "trial"
    elif spec.status == Account.Status.CHURNED:
        profile = "cooling"
    else:
        profile = _pick(rng, PROFILES)
    low, high, trend_low, trend_high = ENGAGEMENT[profile]
    spec.profile = profile
    spec.engagement = rng.uniform(low, high)
    spec.trend = rng.uniform(trend_low, trend_high)

    limited = [k for k, limit in tiers[spec.usage_tier].limits.items() if limit is not None]
    if not limited or profile not in ("hot", "warm"):
        return
    weights = [FOCUS_WEIGHTS.get(k, 10) for k in limited]
    if profile == "warm":
        spec.focus[rng.choices(limited, weights)[0]] = "slow_growth"
        return
    # An open opportunity stands on storage (a limit every plan has) so the default rules keep it flagged.
    first = (
        "storage_gb" if spec.role.startswith("open") and "storage_gb" in limited else rng.choices(limited, weights)[0]
    )
    spec.focus[first] = rng.choice(["near", "near", "over"] if spec.role else ["near", "over", "growth", "growth"])
    if rng.random() < 0.5 or spec.role:
        second = rng.choices(limited, weights)[0]
        spec.focus.setdefault(second, rng.choice(["near", "growth"]))


# --- Usage (pure) --------------------------------------------------------------------------------------


def _unlimited_scale(rng: random.Random, key: str, employees: int) -> float:
    """A sensible absolute level for a metric the plan does not limit."""
    if key == "seats":
        return min(5000.0, max(10.0, employees * rng.uniform(0.3, 0.8)))
    if key == "api_calls":
        return min(5_000_000.0, max(50_000.0, employees * rng.uniform(200, 800)))
    if key == "projects":
        return min(1500.0, max(20.0, employees * rng.uniform(0.2, 0.6)))
    if key == "integrations":
        return rng.uniform(8, 40)
    if key == "storage_gb":
        return min(20_000.0, max(50.0, employees * rng.uniform(0.5, 2.0)))
    return rng.uniform(20, 500)


def usage_series(
    rng: random.Random,
    *,
    shape: str,
    ref: float,
    cap: float | None,
    integer: bool,
    over_ok: bool,
    start: int = 0,
    end: int = USAGE_DAYS,
    days: int = USAGE_DAYS,
) -> list[float]:
    """Daily values (oldest first, the last one on as_of) of one metric with the given shape.

    `ref` is the level shapes are relative to (the plan limit, or a typical level when unlimited); values are
    0 outside [start, end) (before the account started, after it churned), never negative, capped at `cap`,
    whole numbers when `integer` (else one decimal).

    - flat: steady at 15–60% of ref; spiky: a 20–55% baseline with bursts of 1.6–2.8×;
    - near: 82–99% of ref (over: 102–130%, or exactly the limit where the product enforces it);
    - growth: rising linearly to 55–85% of ref, reaching it in 5–40 days (slow_growth: 45–75%, in 40–150);
    - shrinking: falling from 40–90% to a third to a half of that; ramp: from 0 at `start` up to 30–85%.
    """
    last = days - 1
    if shape == "near":
        u = rng.uniform(0.82, 0.99)
        level = ref * u
        base = [level] * days
        noise = 0.03
    elif shape == "over":
        level = ref * (rng.uniform(1.02, 1.3) if over_ok else 1.0)
        base = [level] * days
        noise = 0.03 if over_ok else 0.0
    elif shape in ("growth", "slow_growth"):
        fast = shape == "growth"
        u_end = rng.uniform(0.55, 0.85) if fast else rng.uniform(0.45, 0.75)
        to_limit = rng.uniform(5, 40) if fast else rng.uniform(40, 150)
        slope = ref * (1 - u_end) / to_limit
        latest = ref * u_end
        # Growth began some time ago; before that the account was steady.
        since = max(start, rng.randint(0, 60))
        floor = ref * 0.05
        base = [max(floor, latest - slope * (last - max(t, since))) for t in range(days)]
        noise = 0.015
    elif shape == "shrinking":
        u0 = rng.uniform(0.4, 0.9)
        u1 = u0 * rng.uniform(0.3, 0.55)
        base = [ref * (u0 + (u1 - u0) * t / last) for t in range(days)]
        noise = 0.04
    elif shape == "ramp":
        u_end = rng.uniform(0.3, 0.85)
        length = max(1, days - start)
        base = [ref * u_end * ((t - start + 1) / length) ** 0.7 if t >= start else 0.0 for t in range(days)]
        noise = 0.03
    elif shape == "spiky":
        level = ref * rng.uniform(0.2, 0.55)
        base = [level * (rng.uniform(1.6, 2.8) if rng.random() < 0.06 else 1.0) for _ in range(days)]
        noise = 0.06
    else:  # flat
        base = [ref * rng.uniform(0.15, 0.6)] * days
        noise = 0.05
    rand = rng.random
    values = [b * (1 + noise * (2 * rand() - 1)) for b in base]
    if cap is not None:
        values = [min(v, cap) for v in values]
    digits = 0 if integer else 1
    values = [float(round(v, digits)) for v in values]
    return [max(0.0, v) if start <= t < end else 0.0 for t, v in enumerate(values)]


def usage_start(spec: AccountSpec, *, as_of: dt.date) -> int:
    """The first of the USAGE_DAYS ending on as_of on which the account existed (0 when it is older): a product
    reports no usage for the days before its customer signed up, so none is recorded for them."""
    first_day = as_of - dt.timedelta(days=USAGE_DAYS - 1)
    return min(USAGE_DAYS, max(0, (spec.active_from - first_day).days)) if spec.active_from else 0


def account_usage(
    spec: AccountSpec, *, seed: int, as_of: dt.date, tiers: list[Tier], metrics: list[MetricInfo]
) -> dict[str, list[float]]:
    """USAGE_DAYS daily values per limit-bearing metric, ending on as_of, shaped by the account's story."""
    rng = _rng(seed, "usage", spec.index)
    first_day = as_of - dt.timedelta(days=USAGE_DAYS - 1)
    start = usage_start(spec, as_of=as_of)
    churned_on = spec.churned_on
    end = min(USAGE_DAYS, max(0, (churned_on - first_day).days)) if churned_on else USAGE_DAYS
    limits = tiers[spec.usage_tier].limits
    series = {}
    for metric in metrics:
        limit = limits.get(metric.key)
        ref = limit if limit is not None else _unlimited_scale(rng, metric.key, spec.employees)
        if spec.profile == "trial":
            shape = "ramp"
        elif spec.profile == "cooling":
            shape = "shrinking"
        elif metric.key in spec.focus and limit is not None:
            shape = spec.focus[metric.key]
        elif metric.key == "api_calls":
            shape = "spiky" if rng.random() < 0.5 else "flat"
        else:
            shape = "spiky" if rng.random() < 0.2 else "flat"
        cap = limit if (limit is not None and metric.key in HARD_LIMITS) else None
        if metric.key == "seats":
            # Nobody has more users than people.
            cap = min(cap, spec.employees) if cap is not None else float(spec.employees)
        series[metric.key] = usage_series(
            rng,
            shape=shape,
            ref=ref,
            cap=cap,
            integer=metric.key not in FRACTIONAL,
            over_ok=metric.key not in HARD_LIMITS,
            start=start,
            end=end,
        )
    return series


# --- Engagement (pure) ---------------------------------------------------------------------------------


def account_events(
    spec: AccountSpec, *, seed: int, as_of: dt.date, tiers: list[Tier], scale: float = 1.0
) -> list[tuple[str, str, str, str, dt.datetime]]:
    """Engagement events of the last EVENT_DAYS days: (external_id, kind, feature, user_ref, occurred_at).

    Volume follows the account's engagement level, the split between the last 30 days and the 30 before
    follows its trend; logins come from a pool of users, a few of them much more active than the rest.
    """
    rng = _rng(seed, "events", spec.index)
    first = max(as_of - dt.timedelta(days=EVENT_DAYS - 1), spec.active_from or as_of)
    # Up to the day before as_of: as_of is usually today, and nothing may have happened later than now.
    last = min(as_of, spec.churned_on or as_of) - dt.timedelta(days=1)
    if first > last:
        return []
    offsets = [(as_of - first).days - k for k in range((last - first).days + 1)]  # days before as_of
    recent = [o for o in offsets if o < 30] or offsets
    earlier = [o for o in offsets if o >= 30] or offsets
    e, share_recent = spec.engagement, min(0.9, max(0.1, 0.5 + spec.trend / 2))
    tier = spec.usage_tier
    seat_limit = tiers[tier].limits.get("seats")
    pool = max(1, min(spec.employees, int(seat_limit or spec.employees), 2 + round(18 * e)))
    users = [f"user-{k:03d}" for k in range(1, pool + 1)]
    user_weights = [1 / k for k in range(1, pool + 1)]

    def day(recent_share: float) -> int:
        return rng.choice(recent if rng.random() < recent_share else earlier)

    drawn: list[tuple[int, str, str, str]] = []
    for _ in range(round((4 + 80 * e) * scale)):
        drawn.append((day(share_recent), EngagementEvent.Kind.LOGIN, "", rng.choices(users, user_weights)[0]))
    included = BASE_FEATURES + [f for f, t in PREMIUM_FEATURES.items() if t <= tier]
    for _ in range(round((2 + 40 * e * rng.uniform(0.3, 1.0)) * scale)):
        user = rng.choices(users, user_weights)[0]
        drawn.append((day(share_recent), EngagementEvent.Kind.FEATURE_USED, rng.choice(included), user))
    locked = [f for f, t in PREMIUM_FEATURES.items() if t > tier]
    if locked and not spec.trial:
        hits = {"hot": rng.randint(4, 16), "warm": rng.randint(0, 7), "calm": rng.randint(0, 2) * (rng.random() < 0.4)}
        for _ in range(round(hits.get(spec.profile, 0) * scale)):
            user = rng.choices(users, user_weights)[0]
            drawn.append((day(0.7), EngagementEvent.Kind.LOCKED_FEATURE_HIT, rng.choice(locked), user))
    trying = [f for f, t in PREMIUM_FEATURES.items() if 0 < t <= tier]
    if spec.trial and trying:
        for _ in range(max(1, round(rng.randint(6, 40) * scale))):
            user = rng.choices(users, user_weights)[0]
            drawn.append((rng.choice(offsets), EngagementEvent.Kind.TRIAL_FEATURE_USED, rng.choice(trying), user))

    events = []
    for offset, kind, feature, user in drawn:
        at = dt.datetime.combine(
            as_of - dt.timedelta(days=offset),
            dt.time(rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59)),
            tzinfo=dt.UTC,
        )
        events.append((at, kind, feature, user))
    events.sort()
    return [
        (f"demo-{spec.external_id}-{n:04d}", kind, feature, user, at)
        for n, (at, kind, feature, user) in enumerate(events, start=1)
    ]


# --- Opportunities (pure) ------------------------------------------------------------------------------


@dataclass(slots=True)
class OpportunitySpec:
    account: AccountSpec
    stage: str
    outcome: str
    source: str
    score: int
    reasons: list[dict]
    target_tier: int
    expected_mrr_delta: Decimal
    identified_at: dt.datetime
    stage_entered_at: dt.datetime
    qualified_at: dt.datetime | None = None
    presented_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    actual_mrr_delta: Decimal | None = None
    qualification: dict = field(default_factory=dict)
    roi_inputs: dict = field(default_factory=dict)
    roi_note: str = ""
    trial_tier: int | None = None
    trial_ends_on: dt.date | None = None
    lost_reason_id: int | None = None
    lost_detail: str = ""
    snoozed_until: dt.date | None = None
    next_step_on: dt.date | None = None
    events: list[tuple] = field(default_factory=list)
    """(occurred_at, kind, by_owner, from_stage, to_stage, changes, message)"""


def _slope(values: list[float]) -> float | None:
    """Least-squares slope per day of equally spaced daily values, as the refresh computes it."""
    return ind.least_squares_trend(ind.Sums.of([(float(x), y) for x, y in enumerate(values)])).slope


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.1f}"


def usage_reasons(
    *,
    usage: dict[str, list[float]],
    limits: dict[str, float | None],
    metrics: list[MetricInfo],
    day: int,
    events: list[tuple],
    on: dt.date,
    rule_ids: dict[str, int],
) -> list[dict]:
    """Why an account looked like a candidate on `on` (index `day` of its usage), highest points first.

    utilization = latest / limit; days to limit = (limit − latest) / slope of the last 30 days when rising;
    locked-feature hits and logins per week count the 30 days up to `on`.
    """
    by_key = {m.key: m for m in metrics}
    facts: dict[str, dict] = {}
    for key, values in usage.items():
        limit = limits.get(key)
        if limit is None or limit <= 0:
            continue
        window = values[max(0, day - 29) : day + 1]
        latest = window[-1]
        slope = _slope(window)
        to_limit = 0.0 if latest >= limit else (limit - latest) / slope if slope and slope > 0 else None
        facts[key] = {
            "utilization": latest / limit,
            "days_to_limit": to_limit,
            "latest": latest,
            "limit": limit,
            "slope": slope,
            "projected_on": ind.projected_date(on, to_limit),
        }
    since = dt.datetime.combine(on - dt.timedelta(days=29), dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(on, dt.time.max, tzinfo=dt.UTC)
    in_window = [e for e in events if since <= e[4] <= until]
    kinds = Counter(e[1] for e in in_window)
    counts = {
        "locked_feature_hits": kinds[EngagementEvent.Kind.LOCKED_FEATURE_HIT],
        "logins_per_week": round(kinds[EngagementEvent.Kind.LOGIN] / 30 * 7, 1),
        "trial_feature_uses": kinds[EngagementEvent.Kind.TRIAL_FEATURE_USED],
    }

    reasons = []
    for name, key, signal, threshold, points in DEMO_RULES:
        if key is None:
            value = counts[signal]
            if value < threshold:
                continue
            text = {
                "locked_feature_hits": f"{value} locked-feature hits in 30 days",
                "logins_per_week": f"{_fmt(value)} logins a week, among the most active accounts",
                "trial_feature_uses": f"Premium features used {value} times in the trial",
            }[signal]
            reasons.append(_reason(name, rule_ids, points, text, None, {signal: value}))
            continue
        fact = facts.get(key)
        value = fact and fact[signal]
        if (
            value is None
            or (signal == "utilization" and value < threshold)
            # Over the limit the utilization reason says it all; the forecast is for limits still ahead.
            or (signal == "days_to_limit" and not 0 < value <= threshold)
        ):
            continue
        text = _metric_text(by_key[key], fact, days_rule=signal == "days_to_limit")
        reasons.append(_reason(name, rule_ids, points, text, key, {signal: round(value, 4)}))
    reasons.sort(key=lambda r: -r["points"])
    return reasons


def _metric_text(metric: MetricInfo, fact: dict, *, days_rule: bool) -> str:
    """The flagging engine's own sentence for a utilization rule or a days-to-limit rule."""
    describe = describe_time_to_limit if days_rule else describe_metric
    return describe(
        MetricFacts(
            key=metric.key,
            label=metric.label,
            unit=metric.unit,
            latest=fact["latest"],
            limit=fact["limit"],
            utilization=fact["utilization"],
            slope_per_day=fact.get("slope"),
            days_to_limit=fact["days_to_limit"],
            projected_limit_on=fact.get("projected_on"),
        )
    )


def _reason(name: str, rule_ids: dict[str, int], points: int, text: str, metric: str | None, signals: dict) -> dict:
    return {
        "rule_id": rule_ids.get(name),
        "rule": name,
        "points": points,
        "text": text,
        "metric": metric,
        "signals": signals,
    }


def demo_opportunities_build(
    specs: Iterable[AccountSpec], *, seed: int, as_of: dt.date, catalogue: Catalogue, scale: float = 1.0
) -> list[OpportunitySpec]:
    """An opportunity, with its history, for every account the demo gave a role (see demo_accounts_build)."""
    return [_opportunity(spec, seed=seed, as_of=as_of, catalogue=catalogue, scale=scale) for spec in specs if spec.role]


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(9, 17), rng.randint(0, 59)), tzinfo=dt.UTC)


def _opportunity(
    spec: AccountSpec, *, seed: int, as_of: dt.date, catalogue: Catalogue, scale: float
) -> OpportunitySpec:
    rng = _rng(seed, "opportunity", spec.index)
    tiers = catalogue.tiers
    role = spec.role
    if role == "won":
        final_stage, outcome = Stage.CLOSE, Outcome.WON
    elif role.startswith("open:"):
        final_stage, outcome = Stage(role.split(":")[1]), Outcome.OPEN
    elif role == "lost":
        final_stage, outcome = rng.choices([Stage.QUALIFY, Stage.PRESENT, Stage.CLOSE], [3, 4, 3])[0], Outcome.LOST
    elif role == "snoozed":
        final_stage, outcome = (
            rng.choices([Stage.IDENTIFY, Stage.QUALIFY, Stage.PRESENT], [1, 3, 2])[0],
            Outcome.SNOOZED,
        )
    else:
        final_stage, outcome = Stage.IDENTIFY, Outcome.CLEARED
    reached = STAGE_ORDER[: STAGE_ORDER.index(final_stage) + 1]

    # Days spent in each stage reached, then the day it ended (closed, or as_of for an open one).
    gaps = [rng.randint(2, 12) for _ in reached[1:]]
    if outcome == Outcome.WON:
        end = spec.won_on
    elif outcome == Outcome.OPEN:
        end = as_of
    elif outcome == Outcome.SNOOZED:
        end = as_of - dt.timedelta(days=rng.randint(2, 40))
    else:
        end = as_of - dt.timedelta(days=rng.randint(3, 70))
    # At least a day before `end`: an open one's history must lie before as_of, which is usually today.
    tail = rng.randint(1, 10) if outcome != Outcome.OPEN or len(reached) > 1 else rng.randint(1, 12)
    identified_on = end - dt.timedelta(days=sum(gaps) + tail)
    stage_days = [identified_on]
    for gap in gaps:
        stage_days.append(stage_days[-1] + dt.timedelta(days=gap))
    stage_at = [_at(d, rng) for d in stage_days]

    if outcome == Outcome.WON:
        upgrade = spec.moves[-1]
        old_tier, target = upgrade.tier_before, upgrade.tier_after
        delta = upgrade.mrr_after - upgrade.mrr_before
        reasons = _pressed_limit(rng, tiers[old_tier], catalogue, low=0.85, high=1.0)
    else:
        old_tier, target = spec.tier, spec.tier + 1
        delta = tiers[target].mrr(spec.billing) - spec.mrr
        usage = account_usage(spec, seed=seed, as_of=as_of, tiers=tiers, metrics=catalogue.metrics)
        events = account_events(spec, seed=seed, as_of=as_of, tiers=tiers, scale=scale)
        day = max(0, USAGE_DAYS - 1 - (as_of - identified_on).days)
        # Without a signal in the usage at identification (it faded since: cleared, lost), a borderline one.
        reasons = usage_reasons(
            usage=usage,
            limits=tiers[spec.tier].limits,
            metrics=catalogue.metrics,
            day=day,
            events=events,
            on=identified_on,
            rule_ids=catalogue.rule_ids,
        ) or _pressed_limit(rng, tiers[old_tier], catalogue, low=0.8, high=0.88)
    score = min(100, sum(r["points"] for r in reasons))
    manual = outcome != Outcome.CLEARED and rng.random() < 0.15
    opp = OpportunitySpec(
        account=spec,
        stage=final_stage,
        outcome=outcome,
        source=Opportunity.Source.MANUAL if manual else Opportunity.Source.RULES,
        score=score,
        reasons=reasons,
        target_tier=target,
        expected_mrr_delta=delta,
        identified_at=stage_at[0],
        stage_entered_at=stage_at[-1],
    )
    target_name = tiers[target].name
    events_: list[tuple] = [
        (
            stage_at[0],
            OpportunityEvent.Kind.CREATED,
            manual,
            "",
            Stage.IDENTIFY,
            {"score": score},
            ("Opened by hand: " if manual else "Flagged by rules: ") + "; ".join(r["rule"] for r in reasons),
        )
    ]
    for k, stage in enumerate(reached[1:], start=1):
        message = {
            Stage.QUALIFY: "Need and budget confirmed on a call.",
            Stage.PRESENT: f"Presented {target_name} with an ROI note.",
            Stage.CLOSE: "Proposal sent; waiting for the signature.",
        }[stage]
        events_.append(
            (
                stage_at[k],
                OpportunityEvent.Kind.STAGE_CHANGED,
                True,
                reached[k - 1],
                stage,
                {"stage": [reached[k - 1], stage]},
                message,
            )
        )
    if Stage.QUALIFY in reached:
        opp.qualified_at = stage_at[1]
        opp.qualification = {
            "need_confirmed": True,
            "business_goals": rng.choice(GOALS),
            "blockers": rng.choice(BLOCKERS),
            "budget_confirmed": outcome == Outcome.WON or rng.random() < 0.6,
            "decision_maker": rng.choice(DECISION_MAKERS),
            "timeline": rng.choice(TIMELINES),
        }
    if Stage.PRESENT in reached:
        opp.presented_at = stage_at[2]
        hours, rate = rng.randint(6, 40), rng.choice([45, 60, 75, 90])
        opp.roi_inputs = {"hours_saved_per_month": hours, "hourly_cost": rate, "added_mrr": str(delta)}
        opp.roi_note = (
            f"{target_name} adds ${delta:,.2f} a month. Saving about {hours} hours a month at ${rate}/hour is worth "
            f"${hours * rate:,} a month: {hours * rate / float(delta or 1):.1f}× the extra cost."
        )
        if rng.random() < 0.4:
            opp.trial_tier = target
            opp.trial_ends_on = stage_days[2] + dt.timedelta(days=14)
        if rng.random() < 0.5:
            events_.append(
                (
                    stage_at[2] + dt.timedelta(hours=2),
                    OpportunityEvent.Kind.EMAIL_SENT,
                    True,
                    "",
                    "",
                    {},
                    f"Sent the {target_name} case study.",
                )
            )
    if outcome == Outcome.OPEN:
        opp.next_step_on = as_of + dt.timedelta(days=rng.randint(1, 14)) if final_stage != Stage.IDENTIFY else None
    else:
        closed_at = _at(end, rng)
        if closed_at <= stage_at[-1]:
            closed_at = stage_at[-1] + dt.timedelta(hours=1)
        opp.closed_at = closed_at
        by_owner = outcome != Outcome.CLEARED
        changes: dict = {"outcome": [Outcome.OPEN, outcome]}
        if outcome == Outcome.WON:
            opp.actual_mrr_delta = delta
            message = f"Won: moved to {target_name}, +${delta:,.2f} MRR."
        elif outcome == Outcome.LOST:
            reason_id, key = rng.choice(catalogue.lost_reasons)
            opp.lost_reason_id = reason_id
            opp.lost_detail = LOST_DETAILS.get(key, "")
            changes["lost_reason"] = key
            message = f"Lost: {opp.lost_detail}".strip()
        elif outcome == Outcome.SNOOZED:
            opp.snoozed_until = end + dt.timedelta(days=rng.randint(30, 90))
            changes["snoozed_until"] = opp.snoozed_until.isoformat()
            message = f"Not now; come back on {opp.snoozed_until:%d %b %Y}."
        else:
            opp.score = rng.randint(0, 25)
            changes["score"] = opp.score
            message = f"Signal cleared: score fell to {opp.score}, below the clearing level."
        events_.append((closed_at, OpportunityEvent.Kind.CLOSED, by_owner, final_stage, final_stage, changes, message))
    opp.events = sorted(events_, key=lambda e: e[0])
    return opp


def _pressed_limit(rng: random.Random, tier: Tier, catalogue: Catalogue, *, low: float, high: float) -> list[dict]:
    """A reason for a limit the account pressed against at `low`–`high` utilization, when its usage does not say.

    For upgrades before the usage window (the old plan's limit) and signals that have faded since.
    """
    limited = [m for m in catalogue.metrics if tier.limits.get(m.key) is not None]
    if not limited:
        return []
    by_key = {m.key: m for m in limited}
    metric = by_key.get("storage_gb") if rng.random() < 0.5 and "storage_gb" in by_key else rng.choice(limited)
    limit = tier.limits[metric.key]
    utilization = rng.uniform(low, high)
    latest = round(limit * utilization, 1 if metric.key in FRACTIONAL else 0)
    fact = {
        "utilization": latest / limit,
        "days_to_limit": 0.0 if latest >= limit else None,
        "latest": latest,
        "limit": limit,
    }
    rule = next(
        (r for r in DEMO_RULES if r[1] == metric.key and r[2] == "utilization" and fact["utilization"] >= r[3]), None
    )
    name, points = (rule[0], rule[4]) if rule else (f"{metric.label} near the limit", 30)
    return [
        _reason(
            name,
            catalogue.rule_ids,
            points,
            _metric_text(metric, fact, days_rule=False),
            metric.key,
            {"utilization": round(fact["utilization"], 4)},
        )
    ]


# --- Writing -------------------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    accounts: int = 0
    by_plan: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    snapshots: int = 0
    events: int = 0
    movements: int = 0
    opportunities: dict[str, int] = field(default_factory=dict)
    workspace: dict[str, int] = field(default_factory=dict)
    """Rows of the CSMs' workspace by kind: contacts, plays, enrolments, tasks, notifications, survey answers."""
    users: list[str] = field(default_factory=list)


def demo_data_exists() -> bool:
    return Account.objects.exists()


@transaction.atomic
def demo_data_reset() -> None:
    """Delete every account (and what hangs off them: usage, events, movements, opportunities) and the demo users."""
    # The two big tables first, each in one statement, so the cascade below has little left to collect.
    UsageSnapshot.objects.all().delete()
    EngagementEvent.objects.all().delete()
    Account.objects.all().delete()
    get_user_model().objects.filter(username__in=DEMO_USERNAMES).delete()


@transaction.atomic
def demo_data_seed(
    *, seed: int, as_of: dt.date, accounts: int, log: Callable[[str], None] | None = None
) -> DemoSummary:
    """Write the demo: users, `accounts` accounts with usage, engagement, MRR history and opportunities.

    Expects an empty account table (the command checks); reads plans, metrics and lost reasons from the
    catalogue. Deterministic for a given seed and as_of.
    """
    log = log or (lambda message: None)
    catalogue = demo_catalogue()
    tiers = catalogue.tiers
    scale = 1.0 if accounts <= BIG_DEMO_ACCOUNTS else 0.5
    users = demo_users_upsert()
    summary = DemoSummary(users=list(users))

    specs = demo_accounts_build(seed=seed, as_of=as_of, count=accounts, tiers=tiers)
    ids = _accounts_create(specs, tiers, users)
    summary.accounts = len(specs)
    summary.by_plan = dict(Counter(tiers[s.tier].name if s.tier is not None else "no plan" for s in specs))
    summary.by_status = dict(Counter(s.status for s in specs))
    log(f"accounts: {len(specs)}")

    first_day = as_of - dt.timedelta(days=USAGE_DAYS - 1)
    days = [first_day + dt.timedelta(days=t) for t in range(USAGE_DAYS)]

    def snapshot_rows() -> Iterator[tuple]:
        for spec in specs:
            usage = account_usage(spec, seed=seed, as_of=as_of, tiers=tiers, metrics=catalogue.metrics)
            account_id = ids[spec.external_id]
            # From the day the account started: zeros before it would drag its trend and stretch its charts.
            start = usage_start(spec, as_of=as_of)
            for metric in catalogue.metrics:
                values = usage[metric.key][start:]
                yield from zip(itertools.repeat(account_id), itertools.repeat(metric.id), values, days[start:])

    summary.snapshots = _insert(UsageSnapshot, ["account", "metric", "value", "captured_on"], snapshot_rows())
    log(f"usage snapshots: {summary.snapshots}")

    def event_rows() -> Iterator[tuple]:
        for spec in specs:
            account_id = ids[spec.external_id]
            for external_id, kind, feature, user, at in account_events(
                spec, seed=seed, as_of=as_of, tiers=tiers, scale=scale
            ):
                # Plain str: psycopg would write an enum member's name, not its value.
                yield account_id, str(kind), feature, user, at, external_id

    summary.events = _insert(
        EngagementEvent, ["account", "kind", "feature", "user_ref", "occurred_at", "external_id"], event_rows()
    )
    log(f"engagement events: {summary.events}")
    # Older, sparser engagement before that window, for the insights pages (it builds on this module's helpers).
    from opportunities.demo_history import demo_history_seed

    summary.events += demo_history_seed(seed=seed, as_of=as_of, specs=specs, ids=ids, tiers=tiers, log=log)

    movements = [
        MrrMovement(
            account_id=ids[spec.external_id],
            occurred_on=move.on,
            kind=move.kind,
            mrr_before=move.mrr_before,
            mrr_after=move.mrr_after,
            plan_before_id=tiers[move.tier_before].id if move.tier_before is not None else None,
            plan_after_id=tiers[move.tier_after].id if move.tier_after is not None else None,
            source=MrrMovement.Source.DEMO,
        )
        for spec in specs
        for move in spec.moves
    ]
    MrrMovement.objects.bulk_create(movements, batch_size=BATCH_SIZE)
    summary.movements = len(movements)
    log(f"MRR movements: {summary.movements}")

    opportunities = demo_opportunities_build(specs, seed=seed, as_of=as_of, catalogue=catalogue, scale=scale)
    _opportunities_create(opportunities, ids, tiers, users)
    summary.opportunities = dict(Counter(f"{o.stage}/{o.outcome}" for o in opportunities))
    log(f"opportunities: {len(opportunities)}")
    log(f"collaborations: {_collaborations_create(users)}")
    # Contacts, plays and their sequences, tasks, notifications, surveys (it builds on this module's helpers).
    from opportunities.demo_workspace import demo_workspace_seed

    summary.workspace = demo_workspace_seed(
        seed=seed, as_of=as_of, users=users, catalogue=catalogue, specs=specs, ids=ids, log=log
    )
    return summary


def demo_users_upsert() -> dict[str, object]:
    """The demo logins (csm1–csm4, manager, admin, sales1), created or reset, all with settings.DEMO_PASSWORD."""
    User = get_user_model()
    # One hash for all of them: hashing is deliberately slow, and these are throwaway demo logins.
    password = make_password(settings.DEMO_PASSWORD)
    groups = {g.name: g for g in Group.objects.filter(name__in=[r.value for r in Role])}
    existing = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    users = {}
    for username, first, last, role in DEMO_USERS:
        user = existing.get(username) or User(username=username)
        user.first_name, user.last_name = first, last
        user.email = f"{first.lower()}.{last.lower()}@example.com"
        user.password = password
        user.is_active = True
        user.is_staff = user.is_superuser = role == Role.ADMIN
        user.save()
        if role.value in groups:
            user.groups.set([groups[role.value]])
        users[username] = user
    return users


def _accounts_create(specs: list[AccountSpec], tiers: list[Tier], users: dict) -> dict[str, int]:
    rows = [
        Account(
            external_id=s.external_id,
            name=s.name,
            plan_id=tiers[s.tier].id if s.tier is not None else None,
            mrr=s.mrr,
            billing_period=s.billing,
            industry=s.industry,
            employees=s.employees,
            region=s.region,
            owner=users[s.owner] if s.owner else None,
            first_purchase_on=s.first_purchase_on,
            plan_started_on=s.plan_started_on,
            status=s.status,
        )
        for s in specs
    ]
    created = Account.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    return {a.external_id: a.pk for a in created}


def _opportunities_create(opps: list[OpportunitySpec], ids: dict[str, int], tiers: list[Tier], users: dict) -> None:
    rows = []
    for o in opps:
        owner = users[o.account.owner] if o.account.owner else None
        rows.append(
            Opportunity(
                account_id=ids[o.account.external_id],
                source=o.source,
                stage=o.stage,
                outcome=o.outcome,
                owner=owner,
                score=o.score,
                reasons=o.reasons,
                target_plan_id=tiers[o.target_tier].id,
                expected_mrr_delta=o.expected_mrr_delta,
                actual_mrr_delta=o.actual_mrr_delta,
                qualification=o.qualification,
                roi_inputs=o.roi_inputs,
                roi_note=o.roi_note,
                trial_plan_id=tiers[o.trial_tier].id if o.trial_tier is not None else None,
                trial_ends_on=o.trial_ends_on,
                lost_reason_id=o.lost_reason_id,
                lost_detail=o.lost_detail,
                snoozed_until=o.snoozed_until,
                next_step_on=o.next_step_on,
                identified_at=o.identified_at,
                qualified_at=o.qualified_at,
                presented_at=o.presented_at,
                closed_at=o.closed_at,
                stage_entered_at=o.stage_entered_at,
                version=len(o.events),
            )
        )
    created = Opportunity.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    OpportunityEvent.objects.bulk_create(
        (
            OpportunityEvent(
                opportunity_id=row.pk,
                actor=users[o.account.owner] if by_owner and o.account.owner else None,
                occurred_at=at,
                kind=kind,
                from_stage=from_stage,
                to_stage=to_stage,
                changes=changes,
                message=message,
            )
            for row, o in zip(created, opps, strict=True)
            for at, kind, by_owner, from_stage, to_stage, changes, message in o.events
        ),
        batch_size=BATCH_SIZE,
    )


DEMO_COLLABORATIONS_OPEN = 2
"""Open opportunities of csm1 the account executive (sales1) works on; she is on the latest win too."""


def _collaborations_create(users: dict) -> int:
    """Bring sales1 onto csm1's best open opportunities and onto the latest win (csm1's when there is one),
    three days before where each stands (never before it was identified), each added by its owner with its
    audit event: her queue, her accounts and the leaderboard have something to show. Returns how many
    collaborations were written."""
    seller = users["sales1"]
    owned = Opportunity.objects.filter(owner__isnull=False).select_related("owner")
    chosen = list(
        owned.filter(owner=users["csm1"], outcome=Outcome.OPEN).order_by("-score", "account__external_id")[
            :DEMO_COLLABORATIONS_OPEN
        ]
    )
    won = (
        owned.filter(outcome=Outcome.WON)
        .order_by(
            models.Case(models.When(owner=users["csm1"], then=0), default=1), "-closed_at", "account__external_id"
        )
        .first()
    )
    chosen += [won] if won else []
    name = f"{seller.first_name} {seller.last_name}"
    rows, events = [], []
    for o in chosen:
        at = max(o.identified_at, (o.closed_at or o.stage_entered_at) - dt.timedelta(days=3))
        rows.append(Collaborator(opportunity=o, user=seller, added_by=o.owner, added_at=at))
        events.append(
            OpportunityEvent(
                opportunity=o,
                actor=o.owner,
                occurred_at=at,
                kind=OpportunityEvent.Kind.COLLABORATOR_ADDED,
                # No user id, unlike the service's: ids change with every reset, and the demo stays the same.
                message=f"{name} works on it with {o.owner.first_name} {o.owner.last_name}",
            )
        )
    Collaborator.objects.bulk_create(rows)
    OpportunityEvent.objects.bulk_create(events)
    # Every event bumped the version (it counts the opportunity's writes).
    Opportunity.objects.filter(pk__in=[o.pk for o in chosen]).update(version=models.F("version") + 1)
    return len(rows)


def _insert(model: type[models.Model], names: list[str], rows: Iterable[tuple]) -> int:
    """Insert plain tuples into `model`'s table in batches; returns the row count.

    bulk_create would spend most of its time building a model instance and its SQL for each of the hundreds
    of thousands of rows, so the rows go in as they are: COPY on PostgreSQL, executemany elsewhere, with
    dates and times adapted by their fields (once per distinct value: snapshots repeat the same 120 days).
    """
    fields = [model._meta.get_field(name) for name in names]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    count = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with _lifted_for_bulk_load(cursor, table), cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            # Fresh statistics, so the pipeline that runs next plans its queries for millions of rows.
            cursor.execute(f"ANALYZE {table}")
        return count
    adapt = [_adapter(f) for f in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    # Table and column names come from the model's _meta, never from input.
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
    with connection.cursor() as cursor:
        for batch in itertools.batched(rows, BATCH_SIZE):
            cursor.executemany(sql, [tuple(a(v) if a else v for a, v in zip(adapt, row, strict=True)) for row in batch])
            count += len(batch)
    return count


@contextmanager
def _lifted_for_bulk_load(cursor, table: str) -> Iterator[None]:
    """Drop a PostgreSQL table's foreign keys, unique constraints and secondary indexes for a load, then restore them.

    PostgreSQL checks foreign keys row by row (Django's are deferred: all at commit, ~35 µs a row, minutes for
    millions) and updates every index for every row. Its manual's advice for bulk loads ("Populating a
    Database") is to drop them and add them back afterwards, which builds each index in one sort and checks each
    key in one join. Everything runs in the seed's transaction: should anything fail, the rollback restores them.
    """
    quote = connection.ops.quote_name
    # Checking the rows written so far now, not at commit, clears the pending trigger events that would
    # otherwise block the ALTER TABLEs.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('f', 'u') ORDER BY contype DESC, conname",  # foreign keys first
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid"
        ") ORDER BY c.relname",
        [table],
    )
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {quote(name)}")
    yield
    for _, definition in indexes:
        cursor.execute(definition)
    for name, definition in reversed(constraints):  # unique ones first: a foreign key may need one
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
    # Back to Django's deferred checks for the rest of the transaction (a cascade deletes in no FK-safe order).
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _adapter(f: models.Field) -> Callable | None:
    """How the backend stores this field's values, for the types whose Python value it cannot take as is."""
    if not isinstance(f, models.DateField | models.DecimalField | models.JSONField):
        return None
    if isinstance(f, models.DateTimeField):
        return lambda value: f.get_db_prep_save(value, connection)
    cache: dict = {}

    def adapt(value):
        if value not in cache:
            cache[value] = f.get_db_prep_save(value, connection)
        return cache[value]

    return adapt
