"""Unsubscribing from play and survey emails: the signed link every sequence email carries, and the opt-out it records.

A link names the address the email went to (lower-cased), the account and the step run that sent it, signed
with the app's secret key: it cannot be forged or altered, and it does not expire (an old email's link keeps
working, as mail providers and the law expect). An opt-out is permanent and holds for the address wherever it
appears: every account, every play, every later enrolment (see `sequence_services`: an email step to an
opted-out address is skipped when it comes due, with the reason in its detail), and survey emails
(`survey_delivery`). `unsubscribable_email` builds both kinds of email with the link.
"""

from __future__ import annotations

import datetime as dt
import email.policy
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
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


class UnsubscribableEmail(EmailMessage):
    """An email to a customer's contact. Its header lines may run to RFC 5322's limit of 998 characters instead
    of being folded at 78: the List-Unsubscribe URL has no space to fold at, and folding it would turn it into
    an encoded-word that mail providers do not read as a URL."""

    def message(self, *, policy=email.policy.default):
        return super().message(policy=policy.clone(max_line_length=998))


def unsubscribable_email(
    *,
    to: str,
    account_id: int,
    account_name: str,
    reply_to: str | None,
    subject: str,
    body: str,
    message_id: str,
    step_run_id: int | None = None,
) -> EmailMessage:
    """The email to `to` with its unsubscribe link in the footer and in the List-Unsubscribe headers (RFC 2369,
    and RFC 8058's one-click POST), and the Message-ID `<message_id@mail_domain()>`, which names what sent it so
    a resend could be recognised. Play emails (a step run) and survey emails are built here alike."""
    url = unsubscribe_url(unsubscribe_token(email=to, account_id=account_id, step_run_id=step_run_id))
    footer = f"\n\n--\nYou receive this email as a contact of {account_name}. To receive no more of them: {url}\n"
    return UnsubscribableEmail(
        subject=subject,
        body=body + footer,
        to=[to],
        reply_to=[reply_to] if reply_to else None,
        headers={
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Message-ID": f"<{message_id}@{mail_domain()}>",
        },
    )


def email_opted_out(email: str) -> EmailOptOut | None:
    """The opt-out of `email` (compared lower-cased), if it has one. One query."""
    return EmailOptOut.objects.filter(email=email.strip().lower()).first()


def email_opt_out_record(*, ref: UnsubscribeRef, at: dt.datetime) -> EmailOptOut:
    """Record that `ref.email` wants no more play or survey emails, once: a second request (a repeated click, the mail
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
