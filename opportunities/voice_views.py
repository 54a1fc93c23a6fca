"""The voice of the customer in the insights area, for managers and admins: what surveys were answered
(per question), why accounts downgraded or left (by segment and plan, next to the reasons upsells were
lost), and how upsells were won and lost (by CSM, play and month).

Each page takes the pipeline dashboard's filters (a period preset or `start` and `end`; the CSM, plan,
industry, company size and region), answers htmx with its results partial and downloads any of its tables
as CSV with `?export=<table>`, through insights_views.section_page. For answers and feedback the CSM is the
account's owner; for win/loss, the opportunity's. Each page runs a fixed number of queries, whatever the
number of accounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from opportunities.insights_views import Filters, InsightsFilterForm, section_page
from opportunities.voice_selectors import decisions
from opportunities.voice_stats import (
    ReasonMatrix,
    Share,
    WinLossRow,
    lost_reason_shares,
    reason_matrix,
    shares,
    win_loss_by_csm,
    win_loss_by_month,
    win_loss_by_play,
    win_loss_total,
)
from playbooks.models import SurveyResponse
from playbooks.survey_selectors import (
    RequestCounts,
    SurveySummary,
    feedback_reason_records,
    feedback_request_counts,
    survey_summaries,
)

REASONS = [(value, label) for value, label in SurveyResponse.Reason.choices]
SEGMENT_DIMENSIONS = [
    ("plan", "Plan left"),
    ("industry", "Industry"),
    ("size_band", "Company size"),
    ("region", "Region"),
]
"""The dimensions feedback reasons are summarised by: the plan the account left (the movement's plan before
when known), then the account's industry, company size and region."""


def _float(value) -> float | None:
    return None if value is None else float(value)


# --- Surveys -------------------------------------------------------------------------------------------------


def _choice_rows(summaries: list[SurveySummary]) -> tuple[list[str], list[list]]:
    header = ["survey", "question", "position", "choice", "count", "share_percent", "current_choice"]
    rows = [
        [s.name, q.text, q.position, c.choice, c.count, c.share, c.current]
        for s in summaries
        for q in s.questions
        if q.is_choice
        for c in q.choices
    ]
    rows += [[s.name, "Reason", "", r.choice, r.count, r.share, True] for s in summaries for r in s.reasons]
    return header, rows


def _text_rows(summaries: list[SurveySummary]) -> tuple[list[str], list[list]]:
    header = ["survey", "question", "position", "submitted_at", "account", "contact", "answer"]
    rows = [
        [s.name, q.text, q.position, t.submitted_at.isoformat(), t.account_name, t.contact, t.text]
        for s in summaries
        for q in s.questions
        if not q.is_choice
        for t in q.texts
    ]
    return header, rows


SURVEY_EXPORTS: dict[str, Callable[[list[SurveySummary]], tuple[Sequence[str], list[list]]]] = {
    "choices": _choice_rows,
    "texts": _text_rows,
}


def _survey_charts(summaries: list[SurveySummary]) -> list[dict]:
    return [
        {
            "id": f"s{s.id}-q{q.position}",
            "labels": [c.choice for c in q.choices],
            "counts": [c.count for c in q.choices],
            "shares": [_float(c.share) for c in q.choices],
        }
        for s in summaries
        for q in s.questions
        if q.is_choice and q.answered
    ]


@require_GET
def insights_surveys(request: HttpRequest) -> HttpResponse:
    """Every survey's answers in the period: per choice question the count and share of each choice, per
    free-text question the latest answers; downgrade and churn feedback adds its reasons."""

    def build(form: InsightsFilterForm, filters: Filters) -> list[SurveySummary]:
        return survey_summaries(start=filters.start, end=filters.end, segment=filters.segment)

    def context_of(summaries: list[SurveySummary], filters: Filters) -> dict:
        return {
            "summaries": summaries,
            "answered": sum(s.responses for s in summaries),
            "charts": _survey_charts(summaries),
        }

    return section_page(
        request,
        section="surveys",
        template="insights/surveys.html",
        exports=SURVEY_EXPORTS,
        build=build,
        context_of=context_of,
    )


# --- Downgrade and churn feedback ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Feedback:
    """The figures of the feedback page."""

    reasons: list[Share]
    matrices: list[ReasonMatrix]
    requests: RequestCounts
    lost: list[Share]

    @property
    def answered(self) -> int:
        return sum(r.count for r in self.reasons)


def _feedback(form: InsightsFilterForm, filters: Filters) -> Feedback:
    start, end, segment = filters.start, filters.end, filters.segment
    records = feedback_reason_records(start=start, end=end, segment=segment)
    labels = dict(REASONS)
    counts: dict[str, int] = {}
    for record in records:
        counts[labels[record.reason]] = counts.get(labels[record.reason], 0) + 1
    return Feedback(
        reasons=shares(counts),
        matrices=[
            reason_matrix(records, dimension=dimension, label=label, reasons=REASONS)
            for dimension, label in SEGMENT_DIMENSIONS
        ],
        requests=feedback_request_counts(start=start, end=end, segment=segment),
        lost=lost_reason_shares(decisions(start=start, end=end, filters=form.filters())),
    )


def _share_rows(name: str, counted: str, rows: list[Share]) -> tuple[list[str], list[list]]:
    return [name, counted, "share_percent"], [[r.label, r.count, r.share] for r in rows]


def _reason_rows(f: Feedback) -> tuple[list[str], list[list]]:
    return _share_rows("reason", "answers", f.reasons)


def _by_segment_rows(f: Feedback) -> tuple[list[str], list[list]]:
    header = ["dimension", "value", "reason", "answers", "share_percent"]
    rows = [
        [m.label, row.value, label, row.counts[i], row.shares[i]]
        for m in f.matrices
        for row in m.rows
        for i, (_, label) in enumerate(m.reasons)
    ]
    return header, rows


def _lost_rows(f: Feedback) -> tuple[list[str], list[list]]:
    return _share_rows("lost_reason", "lost", f.lost)


FEEDBACK_EXPORTS: dict[str, Callable[[Feedback], tuple[Sequence[str], list[list]]]] = {
    "reasons": _reason_rows,
    "by_segment": _by_segment_rows,
    "lost_reasons": _lost_rows,
}


def _feedback_charts(f: Feedback) -> dict:
    by_plan = f.matrices[0]
    return {
        "by_plan": {
            "plans": [row.value for row in by_plan.rows],
            "series": [
                {"name": label, "counts": [row.counts[i] for row in by_plan.rows]}
                for i, (_, label) in enumerate(by_plan.reasons)
            ],
        },
        "compare": {
            "feedback": {"labels": [r.label for r in f.reasons], "shares": [_float(r.share) for r in f.reasons]},
            "lost": {"labels": [r.label for r in f.lost], "shares": [_float(r.share) for r in f.lost]},
        },
    }


@require_GET
def insights_feedback(request: HttpRequest) -> HttpResponse:
    """Why accounts downgraded or left, from the reasons of the feedback answered in the period: overall,
    by the plan left and by industry, company size and region, with the share of feedback requests answered,
    next to the reasons upsell opportunities were lost in the period."""
    return section_page(
        request,
        section="feedback",
        template="insights/feedback.html",
        exports=FEEDBACK_EXPORTS,
        build=_feedback,
        context_of=lambda f, filters: {"feedback": f, "charts": _feedback_charts(f)},
    )


# --- Win/loss ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WinLoss:
    """The figures of the win/loss page."""

    total: WinLossRow
    by_csm: list[WinLossRow]
    by_play: list[WinLossRow]
    by_month: list[WinLossRow]
    reasons: list[Share]


def _winloss(form: InsightsFilterForm, filters: Filters) -> WinLoss:
    decided = decisions(start=filters.start, end=filters.end, filters=form.filters())
    return WinLoss(
        total=win_loss_total(decided),
        by_csm=win_loss_by_csm(decided),
        by_play=win_loss_by_play(decided),
        by_month=win_loss_by_month(decided, start=filters.start, end=filters.end),
        reasons=lost_reason_shares(decided),
    )


def _group_rows(name: str, rows: Callable[[WinLoss], list[WinLossRow]]):
    def export(w: WinLoss) -> tuple[list[str], list[list]]:
        header = [name, "won", "lost", "win_rate_percent", "expansion_mrr", "top_lost_reasons"]
        return header, [
            [
                r.key.isoformat()[:7] if isinstance(r.key, dt.date) else r.label,
                r.won,
                r.lost,
                r.win_rate,
                r.expansion_mrr,
                "; ".join(f"{label} ({n})" for label, n in r.reasons),
            ]
            for r in rows(w)
        ]

    return export


WINLOSS_EXPORTS: dict[str, Callable[[WinLoss], tuple[Sequence[str], list[list]]]] = {
    "by_csm": _group_rows("csm", lambda w: w.by_csm),
    "by_play": _group_rows("play", lambda w: w.by_play),
    "by_month": _group_rows("month", lambda w: w.by_month),
    "lost_reasons": lambda w: _share_rows("lost_reason", "lost", w.reasons),
}


def _winloss_charts(w: WinLoss) -> dict:
    return {
        "months": [r.label for r in w.by_month],
        "won": [r.won for r in w.by_month],
        "lost": [r.lost for r in w.by_month],
        "rate": [_float(r.win_rate) for r in w.by_month],
        "csms": [r.label for r in w.by_csm],
        "csm_won": [r.won for r in w.by_csm],
        "csm_lost": [r.lost for r in w.by_csm],
    }


@require_GET
def insights_winloss(request: HttpRequest) -> HttpResponse:
    """Upsells won and lost in the period: the win rate, by CSM (the opportunity's owner), by play and by
    month, with the reasons they were lost."""
    return section_page(
        request,
        section="winloss",
        template="insights/winloss.html",
        exports=WINLOSS_EXPORTS,
        build=_winloss,
        context_of=lambda w, filters: {"winloss": w, "charts": _winloss_charts(w)},
    )
