"""The surveys API for the customer's product: answers to the in-app surveys that the prompts API offers
(`GET /accounts/{external_id}/prompts` lists them under `surveys`). See playbooks.surveys for who is asked
and how answers are checked.

An answer is stored once per survey, account and contact: the same answer sent again answers 200 with the
stored one (`Idempotent-Replayed` is for `Idempotency-Key` replays), a different one from the same contact
409, unless the account has an open feedback request on the survey, which the new answer fulfils. An
`Idempotency-Key` header replays the first answer to the same key, as on every write of the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Router, Schema
from pydantic import Field, StringConstraints

from accounts.api_errors import Detail, Invalid, invalid_response, json_response, pointer
from accounts.idempotency import idempotent_write
from accounts.ingest import ExternalId, Item
from accounts.models import Account
from playbooks.models import SurveyResponse
from playbooks.surveys import (
    CONTACT_MAX_CHARS,
    AnswerConflict,
    AnswerInvalid,
    OfferedSurvey,
    SurveyNotOffered,
    UnknownSurvey,
    survey_answer_record,
    survey_offer_ref,
)

router = Router(tags=["surveys"])

IDEMPOTENCY_HEADER = Header(
    None,
    alias="Idempotency-Key",
    description="Any unique string (e.g. a UUID). Sent again with the same body, the first answer is replayed.",
)

Contact = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=CONTACT_MAX_CHARS)
]


# What the prompts API lists under `surveys` (playbooks.prompts_api).
class SurveyQuestionOut(Schema):
    position: int = Field(description="1 to 3: the key of its answer.")
    text: str
    kind: Literal["choice", "text"]
    choices: list[str] = Field(description="The options of a choice question; empty for free text.")
    required: bool = Field(description="Choice questions must be answered; free text may be left out.")


class ReasonOut(Schema):
    key: str
    label: str


class SurveyOut(Schema):
    id: str = Field(description="Opaque; post the answers to /surveys/{id}/responses.")
    name: str
    purpose: Literal["needs", "churn_feedback"]
    intro: str
    questions: list[SurveyQuestionOut]
    reasons: list[ReasonOut] = Field(
        description="Downgrade and churn feedback: the reasons to choose one from (required); empty otherwise."
    )


def survey_out(survey: OfferedSurvey) -> dict:
    return {
        "id": survey.id,
        "name": survey.name,
        "purpose": survey.purpose,
        "intro": survey.intro,
        "questions": [
            {"position": q.position, "text": q.text, "kind": q.kind, "choices": q.choices, "required": q.required}
            for q in survey.questions
        ],
        "reasons": survey.reasons,
    }


class SurveyResponseIn(Item):
    """One user's answers: by question position ("1" to "3"), the choice or the text. A downgrade and churn
    feedback survey also takes a `reason` (one of the keys the survey lists)."""

    account: ExternalId = Field(description="The account's external_id, the one the survey was offered to.")
    contact: Contact = Field(description="The customer's user id or email: one answer per contact.")
    answers: dict[str, str | None] = Field(default_factory=dict)
    reason: str | None = None


class SurveyResponseOut(Schema):
    id: int
    survey: str
    account: str
    contact: str
    reason: str | None
    answers: dict[str, str]
    submitted_at: dt.datetime


def _body(response: SurveyResponse, account: Account) -> dict:
    return {
        "id": response.pk,
        "survey": response.survey.name,
        "account": account.external_id,
        "contact": response.contact_ref,
        "reason": response.reason or None,
        "answers": response.answers,
        "submitted_at": response.submitted_at.isoformat(),
    }


@router.post(
    "/surveys/{survey_id}/responses",
    response={
        200: SurveyResponseOut,
        201: SurveyResponseOut,
        400: Detail,
        401: Detail,
        404: Detail,
        409: Detail,
        413: Detail,
        422: Invalid,
    },
    summary="Record a user's answers to a survey",
)
def survey_responses_post(
    request: HttpRequest, survey_id: str, payload: SurveyResponseIn, idempotency_key: str | None = IDEMPOTENCY_HEADER
):
    """Store the answers of one user (`contact`) of the account the survey was offered to. Answers 201 with
    the stored answer; 200 when the same answers from the same contact are stored already; 409 when that
    contact answered differently before; 422 naming each field that is wrong (an unknown question or
    choice, a choice question left out, text over 2,000 characters, a missing or unknown reason, a survey
    offered to another account or switched off since), storing nothing; 404 for an id not issued here."""
    at = timezone.now()

    def write() -> HttpResponse:
        ref = survey_offer_ref(survey_id)
        if ref is None:
            return json_response({"detail": "No such survey."}, status=404)
        account = Account.objects.select_related("owner").filter(external_id=payload.account).first()
        if account is None:
            return invalid_response(
                [{"pointer": "/account", "message": f"No account with external_id {payload.account!r}."}]
            )
        if ref.account_id != account.pk:
            return invalid_response(
                [{"pointer": "/account", "message": "This survey was not offered to this account."}]
            )
        try:
            result = survey_answer_record(
                survey_id=ref.survey_id,
                account=account,
                contact=payload.contact,
                answers=payload.answers,
                reason=payload.reason,
                at=at,
            )
        except UnknownSurvey as error:
            return json_response({"detail": str(error)}, status=404)
        except SurveyNotOffered as error:
            return invalid_response([{"pointer": "/account", "message": str(error)}])
        except AnswerInvalid as error:
            return invalid_response([{"pointer": pointer(e.path), "message": e.message} for e in error.errors])
        except AnswerConflict as error:
            return json_response({"detail": f"{error} Its first answer stands."}, status=409)
        return json_response(_body(result.response, account), status=201 if result.created else 200)

    return idempotent_write(request, write, at=at)
