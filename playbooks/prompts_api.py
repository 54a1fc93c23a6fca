"""The in-app prompts API for the customer's product: the prompts to show an account now, and what its users
did with them (impression, click, dismiss), recorded as touches of the play. See playbooks.prompts for when
a prompt is offered."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Router, Schema
from pydantic import Field

from accounts.api_errors import Detail, Invalid, invalid_response, json_response
from accounts.idempotency import idempotent_write
from accounts.ingest import FUTURE_SLACK, ExternalId, Item, Timestamp
from accounts.models import Account
from playbooks.prompts import PromptNotOffered, UnknownPrompt, prompt_event_record, prompts_offer
from playbooks.survey_api import SurveyOut, survey_out
from playbooks.surveys import surveys_offer

router = Router(tags=["in-app prompts"])

IDEMPOTENCY_HEADER = Header(
    None,
    alias="Idempotency-Key",
    description="Any unique string (e.g. a UUID). Sent again with the same body, the first answer is replayed.",
)


class PromptOut(Schema):
    id: str = Field(description="Opaque; send it back to record what happened to the prompt.")
    play: str
    kind: Literal["banner", "modal", "tooltip"]
    text: str
    cta_label: str
    cta_url: str
    variant: str | None = Field(description="The A/B test variant shown, null outside an experiment.")


class PromptsOut(Schema):
    prompts: list[PromptOut]
    surveys: list[SurveyOut] = Field(description="In-app surveys to show the account now (playbooks.surveys).")


class PromptEventIn(Item):
    """Something a user of the account did with a prompt. `timestamp` defaults to now; one without an offset
    is UTC."""

    account: ExternalId = Field(description="The account's external_id, the one the prompts were read for.")
    type: Literal["impression", "click", "dismiss"]
    timestamp: Timestamp | None = None


class PromptEventOut(Schema):
    id: str
    account: str
    type: str
    timestamp: dt.datetime
    play: str
    variant: str | None


@router.get(
    "/accounts/{external_id}/prompts",
    response={200: PromptsOut, 401: Detail, 404: Detail},
    summary="Prompts to show an account now",
)
def prompts_get(request: HttpRequest, external_id: str):
    """The in-app prompts to show the account now, most relevant first: the prompts of active plays whose
    rules fire for the account today, in its A/B test variant (none for the control group), within each
    play's frequency cap (shows per 7 days), its gap between touches and the account's cap of touches per
    30 days. Report each prompt shown with an `impression` event: impressions count against the caps.
    `surveys` lists the in-app surveys the account is asked now (an open feedback request after a downgrade
    or churn, or an upcoming-needs survey whose rule fires and nobody there has answered); post the answers
    to /surveys/{id}/responses."""
    account = Account.objects.select_related("plan", "owner").filter(external_id=external_id).first()
    if account is None:
        return json_response({"detail": f"No account with external_id {external_id!r}."}, status=404)
    at = timezone.now()
    prompts = prompts_offer(account=account, at=at)
    return {"prompts": prompts, "surveys": [survey_out(s) for s in surveys_offer(account=account, at=at)]}


@router.post(
    "/prompts/{prompt_id}/events",
    response={201: PromptEventOut, 400: Detail, 401: Detail, 404: Detail, 409: Detail, 413: Detail, 422: Invalid},
    summary="Record an impression, click or dismissal of a prompt",
)
def prompt_events_post(
    request: HttpRequest, prompt_id: str, payload: PromptEventIn, idempotency_key: str | None = IDEMPOTENCY_HEADER
):
    """Record what a user of the account did with a prompt, as a touch of the prompt's play (and variant).
    The account must be the one the prompt was offered to. A timestamp more than a day ahead is refused;
    one slightly ahead (clock skew) is recorded as now."""
    at = timezone.now()

    def write() -> HttpResponse:
        account = Account.objects.filter(external_id=payload.account).first()
        if account is None:
            return invalid_response(
                [{"pointer": "/account", "message": f"No account with external_id {payload.account!r}."}]
            )
        occurred_at = payload.timestamp or at
        if occurred_at > at + FUTURE_SLACK:
            return invalid_response([{"pointer": "/timestamp", "message": "Is in the future."}])
        try:
            touch = prompt_event_record(prompt=prompt_id, account=account, event=payload.type, at=min(occurred_at, at))
        except UnknownPrompt as error:
            return json_response({"detail": str(error)}, status=404)
        except PromptNotOffered as error:
            return invalid_response([{"pointer": "/account", "message": str(error)}])
        body = {
            "id": prompt_id,
            "account": account.external_id,
            "type": payload.type,
            "timestamp": touch.occurred_at.isoformat(),
            "play": touch.play.name,
            "variant": touch.variant.name if touch.variant else None,
        }
        return json_response(body, status=201)

    return idempotent_write(request, write, at=at)
