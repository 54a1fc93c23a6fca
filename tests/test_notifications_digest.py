"""The daily digest: one email a day with what is new, to those who want it, never twice."""

import datetime as dt

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Notification, NotificationSetting
from accounts.tasks import DigestsIncomplete, send_daily_digests
from accounts.work_services import digest_send, digests_send, notify
from tests.factories import UserFactory
from tests.test_concurrency import run_together

AT = dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.UTC)
ON = dt.date(2026, 3, 10)
NEW = Notification.Kind.NEW_CANDIDATE


def told(user, title="New candidate: Acme", *, hours_ago=1, kind=NEW, **kwargs) -> Notification:
    return notify(recipient=user, kind=kind, title=title, at=AT - dt.timedelta(hours=hours_ago), **kwargs)


def test_it_emails_each_user_their_notifications_of_the_day_and_marks_them_digested(csm, other_csm):
    told(csm, "New candidate: Acme", url="/accounts/1/")
    told(csm, "Due today: Call the CFO (Acme)", kind=Notification.Kind.TASK_DUE)
    told(other_csm, "New candidate: Initech")

    report = digests_send(on=ON, at=AT)

    assert (report.sent, report.failed) == (2, 0)
    [casey] = [m for m in mail.outbox if m.to == ["casey@example.com"]]
    assert casey.subject == "Your Upsell CRM digest: 2 new notifications"
    assert "- New candidate: Acme" in casey.body and "- Due today: Call the CFO (Acme)" in casey.body
    assert "/accounts/1/" in casey.body and "Initech" not in casey.body
    assert not Notification.objects.filter(digested_at__isnull=True).exists()
    assert NotificationSetting.objects.get(user=csm).last_digest_on == ON


def test_its_links_point_at_the_apps_public_address(csm, settings):
    settings.APP_URL = "https://crm.example.com/"
    told(csm, "New candidate: Acme", url="/accounts/1/")

    digest_send(user=csm, on=ON, at=AT)

    assert "https://crm.example.com/accounts/1/" in mail.outbox[0].body


def test_it_sends_the_digest_once_a_day_even_when_run_twice(csm):
    told(csm)
    digests_send(on=ON, at=AT)
    told(csm, "Arrived after the digest", hours_ago=0)

    report = digests_send(on=ON, at=AT + dt.timedelta(minutes=5))

    assert report.sent == 0 and len(mail.outbox) == 1


def test_it_carries_what_came_after_todays_digest_in_tomorrows(csm):
    told(csm, "Morning")
    digests_send(on=ON, at=AT)
    told(csm, "Evening", hours_ago=-2)

    digests_send(on=ON + dt.timedelta(days=1), at=AT + dt.timedelta(days=1))

    assert len(mail.outbox) == 2
    assert "Evening" in mail.outbox[1].body and "Morning" not in mail.outbox[1].body


def test_it_does_not_send_twice_when_another_worker_claimed_the_day(csm):
    told(csm)
    # Another worker's claim committed between this one's look at the setting and its own claim.
    NotificationSetting.objects.create(user=csm, last_digest_on=ON)

    assert digest_send(user=csm, on=ON, at=AT) is False
    assert mail.outbox == []
    assert Notification.objects.get().digested_at is None


def test_it_sends_nothing_to_someone_who_turned_the_digest_off(csm):
    NotificationSetting.objects.create(user=csm, daily_digest=False)
    told(csm)

    assert digests_send(on=ON, at=AT).sent == 0
    assert mail.outbox == [] and Notification.objects.get().digested_at is None


def test_it_sends_nothing_when_nothing_is_new_and_keeps_the_day_open(csm):
    told(csm, hours_ago=30)  # yesterday's, before the last digest's day

    assert digests_send(on=ON, at=AT).sent == 0
    assert mail.outbox == []
    assert not NotificationSetting.objects.filter(user=csm, last_digest_on=ON).exists()


def test_it_leaves_out_kinds_muted_since_they_arrived(csm):
    told(csm, "Candidate")
    told(csm, "Due today", kind=Notification.Kind.TASK_DUE)
    NotificationSetting.objects.create(user=csm, muted_kinds=[Notification.Kind.TASK_DUE])

    digests_send(on=ON, at=AT)

    assert "Candidate" in mail.outbox[0].body and "Due today" not in mail.outbox[0].body
    assert "1 new notification" in mail.outbox[0].subject


def test_it_sends_nothing_when_only_muted_kinds_are_new(csm):
    told(csm, "Due today", kind=Notification.Kind.TASK_DUE)
    NotificationSetting.objects.create(user=csm, muted_kinds=[Notification.Kind.TASK_DUE])

    digests_send(on=ON, at=AT)

    assert mail.outbox == []


def test_it_skips_users_without_an_address_or_inactive(db):
    no_address = UserFactory(email="")
    told(no_address)
    gone = UserFactory()
    told(gone)
    gone.is_active = False
    gone.save()

    assert digests_send(on=ON, at=AT).sent == 0 and mail.outbox == []


def test_it_rolls_back_the_claim_of_a_digest_that_failed_to_send_so_a_retry_sends_it(csm, monkeypatch):
    told(csm)

    def broken(self, *args, **kwargs):
        raise ConnectionError("mail server down")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMessage.send", broken)
        assert digests_send(on=ON, at=AT).failed == 1
    assert Notification.objects.get().digested_at is None

    assert digests_send(on=ON, at=AT + dt.timedelta(minutes=5)).sent == 1
    assert len(mail.outbox) == 1


def test_the_task_raises_for_a_retry_when_some_digests_failed(csm, monkeypatch, eager_celery):
    told(csm)
    monkeypatch.setattr("accounts.tasks.digests_send", lambda **kwargs: type("R", (), {"sent": 0, "failed": 1})())
    monkeypatch.setattr(send_daily_digests, "max_retries", 0)

    with pytest.raises(DigestsIncomplete):
        send_daily_digests.apply(kwargs={"on": ON.isoformat()}).get()


def test_the_task_sends_the_days_digests(csm, eager_celery):
    notify(recipient=csm, kind=NEW, title="Just now", at=dt.datetime.now(tz=dt.UTC))

    send_daily_digests.delay()

    assert len(mail.outbox) == 1


# --- At once, on PostgreSQL -------------------------------------------------------------------------------------

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers")


@on_postgresql
def test_ten_digest_runs_at_once_send_one_email(committed_db, csm):
    told(csm)

    results = run_together(lambda i: digests_send(on=ON, at=AT), threads=10)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(r.sent for r in results) == 1 and len(mail.outbox) == 1


@on_postgresql
def test_ten_workers_notifying_the_same_key_at_once_store_one_row_and_none_raises(committed_db, csm):
    results = run_together(
        lambda i: notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="new-candidate:1"),
        threads=10,
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(r is not None for r in results) == 1
    assert Notification.objects.filter(recipient=csm).count() == 1
