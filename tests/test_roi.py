"""The ROI calculator: monthly value, ROI % against the price increase, and payback months."""

from decimal import Decimal

from opportunities.roi import RoiInputs, roi_calculate, roi_note


def test_it_adds_hours_saved_times_their_cost_to_the_overage_avoided():
    result = roi_calculate(
        RoiInputs(
            hours_saved_per_month=Decimal("20"),
            hourly_cost=Decimal("60"),
            avoided_per_month=Decimal("300"),
            price_delta_per_month=Decimal("150"),
        )
    )
    assert result.monthly_value == Decimal("1500.00")
    assert result.roi_percent == Decimal("900.0")
    # A year of +150/month is 1,800, earned back by 1,500/month in 1.2 months.
    assert result.payback_months == Decimal("1.2")


def test_it_reports_a_negative_roi_when_the_value_is_below_the_price_increase():
    result = roi_calculate(RoiInputs(avoided_per_month=Decimal("50"), price_delta_per_month=Decimal("100")))
    assert result.roi_percent == Decimal("-50.0")
    assert result.payback_months == Decimal("24.0")


def test_it_has_no_roi_without_a_price_increase_and_no_payback_without_value():
    assert roi_calculate(RoiInputs(avoided_per_month=Decimal("10"))).roi_percent is None
    assert roi_calculate(RoiInputs(price_delta_per_month=Decimal("10"))).payback_months is None


def test_it_writes_the_roi_note_as_one_sentence():
    inputs = RoiInputs(
        hours_saved_per_month=Decimal("20"),
        hourly_cost=Decimal("60"),
        avoided_per_month=Decimal("300"),
        price_delta_per_month=Decimal("150"),
    )
    note = roi_note(inputs, roi_calculate(inputs), currency="USD")
    assert note == (
        "20 hours a month saved at 60.00 USD an hour plus 300.00 USD a month of overage or risk avoided: "
        "1,500.00 USD of value a month for 150.00 USD a month more, an ROI of 900.0%, "
        "paying back a year of the upgrade in 1.2 months."
    )
