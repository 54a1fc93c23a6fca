"""The formatting filters the account screens use for money, numbers, percentages and usage bands."""

from decimal import Decimal

import pytest

from accounts.templatetags.account_format import money, money_delta, number, pct, per_day, usage_band


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("1234"), "USD", "$1,234.00"),
        (Decimal("0.005"), "USD", "$0.01"),
        (Decimal("990"), "EUR", "€990.00"),
        (Decimal("1500.5"), "CHF", "CHF 1,500.50"),
        (Decimal("-29"), "USD", "−$29.00"),
        (None, "USD", "—"),
    ],
)
def test_it_formats_money_with_its_currency(value, currency, expected):
    assert money(value, currency) == expected


def test_it_signs_mrr_changes():
    assert money_delta(Decimal("70"), "USD") == "+$70.00"
    assert money_delta(Decimal("-29"), "USD") == "−$29.00"


@pytest.mark.parametrize(
    ("value", "expected"), [(9200, "9,200"), (92.0, "92"), (9.25, "9.2"), (1024.4, "1,024"), (None, "—")]
)
def test_it_formats_numbers_for_people(value, expected):
    assert number(value) == expected


def test_it_shows_ratios_as_percentages():
    assert pct(0.92) == "92%"
    assert pct(1.27) == "127%"
    assert pct(None) == "—"


def test_it_shows_slopes_per_day_with_their_sign():
    assert per_day(0.12) == "+0.12 / day"
    assert per_day(-210.4) == "−210 / day"
    assert per_day(-0.001) == "flat"
    assert per_day(None) == "—"


@pytest.mark.parametrize(
    ("ratio", "band"), [(None, "none"), (0.79, "normal"), (0.8, "warning"), (0.99, "warning"), (1.0, "danger")]
)
def test_it_puts_utilization_in_the_alert_bands(ratio, band):
    assert usage_band(ratio) == band
