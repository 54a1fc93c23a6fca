"""Unsubscribing from play emails: the signed link every sequence email carries, and the opt-out it records.

A link names the address the email went to (lower-cased), the account and the step run that sent it, signed
with the app's secret key: it cannot be forged or altered, and it does not expire (an old email's link keeps
working, as mail providers and the law expect). An opt-out is permanent and holds for the address wherever it
appears: every account, every play, every later enrolment (see `sequence_services`: an email step to an
opted-out address is skipped when it comes due, with the reason in its detail).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

from accounts.models import Account, EmailOptOut

_SALT = "playbooks.unsubscribe"
SOURCE = "Play email unsubscribe link"


@dataclass(frozen=True, slots=True)
class UnsubscribeRef:
    """What an unsubscribe link stands for: the address an email went to, its account and step run."""

    email: str
    account_id: int | None
    step_run_id: int | None


def unsubscribe_token(*, email: str, account_id: int | None, step_run_id: int | None) -> str:
    """The signed, URL-safe token of an unsubscribe link (base64 JSON and an HMAC signature)."""
    return signing.dumps([email.strip().lower(), account_id, step_run_id], salt=_SALT, compress=True)


def unsubscribe_ref(token: str) -> UnsubscribeRef | None:
    """What `token` stands for; None when it was not issued here, was altered, or is malformed."""
    try:
        value = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError, UnicodeError):
        return None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and "@" in value[0]):
        return None
    email, account_id, step_run_id = value
    if not all(part is None or (isinstance(part, int) and not isinstance(part, bool)) for part in value[1:]):
        return None
    return UnsubscribeRef(email=email, account_id=account_id, step_run_id=step_run_id)


def unsubscribe_url(token: str) -> str:
    """The absolute address of the unsubscribe page for `token`, on the app's public address (APP_URL)."""
    return settings.APP_URL.rstrip("/") + reverse("unsubscribe", args=[token])


def mail_domain() -> str:
    """The domain of the Message-IDs the app gives its emails: the host of APP_URL."""
    return urlsplit(settings.APP_URL).hostname or "localhost"


def email_opted_out(email: str) -> EmailOptOut | None:
    """The opt-out of `email` (compared lower-cased), if it has one. One query."""
    return EmailOptOut.objects.filter(email=email.strip().lower()).first()


def email_opt_out_record(*, ref: UnsubscribeRef, at: dt.datetime) -> EmailOptOut:
    """Record that `ref.email` wants no more play emails, once: a second request (a repeated click, the mail
    provider's one-click POST after the person's own) keeps the first opt-out and its time.

    INSERT ... ON CONFLICT DO NOTHING on the unique lower-cased address, so two requests racing store one row.
    The account is kept when it still exists. Two queries, three with the account.
    """
    email = ref.email.strip().lower()
    account_id = ref.account_id if ref.account_id and Account.objects.filter(pk=ref.account_id).exists() else None
    EmailOptOut.objects.bulk_create(
        [EmailOptOut(email=email, opted_out_at=at, account_id=account_id, source=SOURCE)], ignore_conflicts=True
    )
    return EmailOptOut.objects.get(email=email)
