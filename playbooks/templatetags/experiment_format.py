"""Formatting for the experiment results: signed lifts and p-values."""

from __future__ import annotations

from django import template

register = template.Library()

EMPTY = "—"


@register.filter
def signed_pct(ratio, decimals: int = 0) -> str:
    """A relative change with its sign: 0.5 -> "+50%", -0.25 -> "−25%", None -> "—"."""
    if ratio is None or ratio == "":
        return EMPTY
    value = float(ratio) * 100
    rounded = round(value, int(decimals))
    if rounded == 0:
        return f"{0:.{int(decimals)}f}%"
    sign = "+" if value > 0 else "−"
    return f"{sign}{abs(value):,.{int(decimals)}f}%"


@register.filter
def p_value(value) -> str:
    """A p-value as people read it: "0.021", "0.40", "< 0.001"; None -> "—"."""
    if value is None or value == "":
        return EMPTY
    value = float(value)
    if value < 0.001:
        return "< 0.001"
    if value < 0.1:
        return f"{value:.3f}"
    return f"{value:.2f}"
