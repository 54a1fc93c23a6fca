"""Formatting for the account screens: money, numbers, percentages, usage bars and badges."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

from accounts.selectors import NEAR_LIMIT

register = template.Library()

EMPTY = "—"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


@register.filter
def money(value, currency: str = "USD") -> str:
    """`1234.5, "USD"` -> "$1,234.50"; unknown currencies put the code first: "CHF 1,234.50"."""
    if value is None or value == "":
        return EMPTY
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return EMPTY
    sign = "−" if amount < 0 else ""
    digits = f"{abs(amount):,.2f}"
    code = (currency or "USD").upper()
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{code} {digits}"


@register.filter
def money_delta(value, currency: str = "USD") -> str:
    """A change of MRR with its sign: "+$70.00", "−$29.00"."""
    if value is None:
        return EMPTY
    formatted = money(value, currency)
    return formatted if Decimal(str(value)) < 0 else f"+{formatted}"


@register.filter
def number(value, decimals: int | None = None) -> str:
    """Thousands separators; whole numbers without decimals, others with one (or `decimals`)."""
    if value is None or value == "":
        return EMPTY
    value = float(value)
    if not math.isfinite(value):
        return EMPTY
    if decimals is None:
        decimals = 0 if value == round(value) or abs(value) >= 1000 else 1
    return f"{value:,.{int(decimals)}f}"


@register.filter
def pct(ratio, decimals: int = 0) -> str:
    """A ratio as a percentage: 0.92 -> "92%"."""
    if ratio is None or ratio == "":
        return EMPTY
    return f"{float(ratio) * 100:,.{int(decimals)}f}%"


@register.filter
def per_day(slope) -> str:
    """A slope in units per day with its sign: "+0.4 / day"."""
    if slope is None or slope == "":
        return EMPTY
    slope = float(slope)
    magnitude = abs(slope)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 1 else 2
    if round(magnitude, decimals) == 0:
        return "flat"
    sign = "+" if slope > 0 else "−"
    return f"{sign}{magnitude:,.{decimals}f} / day"


@register.filter
def usage_band(ratio) -> str:
    """The alert band of a utilization: below 80% normal, 80–100% warning, 100% and over danger."""
    if ratio is None or ratio == "":
        return "none"
    if ratio >= 1:
        return "danger"
    if ratio >= NEAR_LIMIT:
        return "warning"
    return "normal"


@register.filter
def display_name(user) -> str:
    if user is None:
        return "Unassigned"
    return user.get_full_name() or user.get_username()


@register.filter
def owner_name(row: dict) -> str:
    """The owner of an `accounts_per_owner` row."""
    if row.get("owner_id") is None:
        return "Unassigned"
    full = f"{row.get('owner__first_name') or ''} {row.get('owner__last_name') or ''}".strip()
    return full or row.get("owner__username") or EMPTY


@register.filter
def plan_class(plan) -> str:
    """A badge class per tier, so plans keep their colour wherever they show."""
    if plan is None:
        return "badge--none"
    return f"badge--tier{min(plan.tier_rank, 4)}"


@register.filter
def share(count, total) -> float:
    """`count` as a percentage of `total` (0 when total is 0), for bar widths."""
    if not total:
        return 0
    return round(float(count) / float(total) * 100, 1)


def usage_label(metric, indicator, *, planless: bool = False) -> str:
    """ "Storage: 92 of 100 GB (92%)"; "Seats: 40 users (unlimited)"; "Seats: no data yet"."""
    unit = f" {metric.unit}" if metric.unit else ""
    if indicator is None or indicator.latest is None:
        return f"{metric.label}: no data yet"
    if planless:
        return f"{metric.label}: {number(indicator.latest)}{unit} (no plan)"
    if indicator.limit is None:
        return f"{metric.label}: {number(indicator.latest)}{unit} (unlimited)"
    share_text = f" ({pct(indicator.utilization)})" if indicator.utilization is not None else ""
    return f"{metric.label}: {number(indicator.latest)} of {number(indicator.limit)}{unit}{share_text}"


@register.inclusion_tag("partials/usage_bar.html")
def usage_bar(indicator, metric, compact: bool = True, planless: bool = False) -> dict:
    """A bar of latest against limit, coloured by alert band, with a spoken label.

    `planless`: the account has no plan, so a missing limit means "no plan", not "unlimited".
    """
    utilization = indicator.utilization if indicator is not None else None
    has_value = indicator is not None and indicator.latest is not None
    return {
        "indicator": indicator,
        "metric": metric,
        "compact": compact,
        "has_value": has_value,
        "planless": planless,
        "unlimited": has_value and indicator.limit is None and not planless,
        "utilization": utilization,
        "band": usage_band(utilization),
        "width": 0 if utilization is None else round(min(max(utilization, 0), 1) * 100, 1),
        "label": usage_label(metric, indicator, planless=planless),
    }
