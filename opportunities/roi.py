"""The ROI of an upgrade for one customer: pure arithmetic on Decimals, no database, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
CENT = Decimal("0.01")
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class RoiInputs:
    hours_saved_per_month: Decimal = ZERO
    hourly_cost: Decimal = ZERO
    # Overage charges or the cost of a risk (an outage, a blocked team) the higher plan avoids, per month.
    avoided_per_month: Decimal = ZERO
    # What the customer pays more per month on the higher plan.
    price_delta_per_month: Decimal = ZERO

    def as_json(self) -> dict[str, str]:
        return {
            "hours_saved_per_month": str(self.hours_saved_per_month),
            "hourly_cost": str(self.hourly_cost),
            "avoided_per_month": str(self.avoided_per_month),
            "price_delta_per_month": str(self.price_delta_per_month),
        }


@dataclass(frozen=True)
class RoiResult:
    monthly_value: Decimal
    roi_percent: Decimal | None
    payback_months: Decimal | None


def roi_calculate(inputs: RoiInputs) -> RoiResult:
    """The monthly value of an upgrade, its return on the price increase, and how fast it pays back.

    monthly value  = hours saved per month × hourly cost + overage or risk avoided per month
    ROI %          = (monthly value − price delta) / price delta × 100      (None when the price does not rise)
    payback months = 12 × price delta / monthly value                        (None when there is no value)

    Payback is the number of months of value it takes to earn back a year of the price increase, the term
    an upgrade usually commits to; under 12 means the upgrade pays for itself within the year.
    """
    value = inputs.hours_saved_per_month * inputs.hourly_cost + inputs.avoided_per_month
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    delta = inputs.price_delta_per_month
    roi = None
    if delta > 0:
        roi = ((value - delta) / delta * 100).quantize(TENTH, rounding=ROUND_HALF_UP)
    payback = None
    if value > 0:
        payback = (12 * delta / value).quantize(TENTH, rounding=ROUND_HALF_UP) if delta > 0 else ZERO
    return RoiResult(monthly_value=value, roi_percent=roi, payback_months=payback)


def roi_note(inputs: RoiInputs, result: RoiResult, *, currency: str) -> str:
    """The ROI in one sentence, as saved on the opportunity and merged into the email."""
    parts = []
    if inputs.hours_saved_per_month and inputs.hourly_cost:
        hours = inputs.hours_saved_per_month.normalize()
        parts.append(f"{hours:f} hours a month saved at {inputs.hourly_cost:,.2f} {currency} an hour")
    if inputs.avoided_per_month:
        parts.append(f"{inputs.avoided_per_month:,.2f} {currency} a month of overage or risk avoided")
    basis = " plus ".join(parts) or "no measurable savings"
    sentence = f"{basis}: {result.monthly_value:,.2f} {currency} of value a month"
    if inputs.price_delta_per_month > 0:
        sentence += f" for {inputs.price_delta_per_month:,.2f} {currency} a month more"
    if result.roi_percent is not None:
        sentence += f", an ROI of {result.roi_percent:,.1f}%"
    if result.payback_months is not None and inputs.price_delta_per_month > 0:
        sentence += f", paying back a year of the upgrade in {result.payback_months:,.1f} months"
    return sentence[0].upper() + sentence[1:] + "."
