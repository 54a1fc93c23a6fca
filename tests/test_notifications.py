"""Notifications: stored unless muted or already sent under the same key, and sent by the pipeline's events
(a new candidate, a snooze back, a billing upgrade, an experiment's verdict)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Notification, NotificationSetting
from accounts.work_services import NotificationDraft, notifications_send, notify
from opportunities.billing import opportunities_close_won_by_billing
from opportunities.models import Outcome
from opportunities.notifications import experiments_significant_notify, snoozes_returned_notify
from playbooks.experiment_services import VariantSpec, experiment_create, experiment_start
from playbooks.models import Assignment, Play
from tests.factories import AccountFactory, MrrMovementFactory, OpportunityFactory, UserFactory
from tests.test_flagging import AS_OF, AT, flag, set_usage

NEW = Notification.Kind.NEW_CANDIDATE


def mute(user, *kinds):
    NotificationSetting.objects.update_or_create(user=user, defaults={"muted_kinds": list(kinds)})


# --- notify ------------------------------------------------------------------------------------------------------


def test_it_stores_a_notification_for_its_recipient(csm, account):
    notification = notify(recipient=csm, kind=NEW, title="New candidate: Acme", at=AT, url="/queue/", account=account)

    assert notification is not None
    stored = Notification.objects.get()
    assert (stored.recipient, stored.kind, stored.title, stored.url, stored.account, stored.created_at) == (
        csm,
        NEW,
        "New candidate: Acme",
        "/queue/",
        account,
        AT,
    )
    assert (stored.read_at, stored.digested_at) == (None, None)


def test_it_stores_nothing_for_a_kind_the_recipient_muted(csm):
    mute(csm, NEW)

    assert notify(recipient=csm, kind=NEW, title="New candidate", at=AT) is None
    assert notify(recipient=csm, kind=Notification.Kind.TASK_DUE, title="Task due", at=AT) is not None
    assert list(Notification.objects.values_list("kind", flat=True)) == [Notification.Kind.TASK_DUE]


def test_it_notifies_a_dedupe_key_once_per_recipient_without_raising(csm, other_csm):
    first = notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="new-candidate:7")
    again = notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="new-candidate:7")
    olive = notify(recipient=other_csm, kind=NEW, title="New candidate", at=AT, dedupe_key="new-candidate:7")

    assert first is not None and again is None and olive is not None
    assert Notification.objects.filter(recipient=csm).count() == 1


def test_it_swallows_the_conflict_of_a_key_stored_by_another_worker_meanwhile(csm, monkeypatch):
    notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="k")
    # The other worker's row is invisible to this one's check, but the constraint still stops the insert.
    monkeypatch.setattr("django.db.models.query.QuerySet.exists", lambda self: False)

    with transaction.atomic():
        assert notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="k") is None
        # The surrounding transaction is still usable: the failed insert was in a savepoint of its own.
        assert Notification.objects.filter(recipient=csm).count() == 1


def test_the_database_refuses_a_second_row_with_the_same_key(csm):
    notify(recipient=csm, kind=NEW, title="New candidate", at=AT, dedupe_key="k")

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(recipient=csm, kind=NEW, title="Twice", created_at=AT, dedupe_key="k")


def test_it_notifies_blank_keys_every_time(csm):
    notify(recipient=csm, kind=NEW, title="One", at=AT)
    notify(recipient=csm, kind=NEW, title="Two", at=AT)

    assert Notification.objects.count() == 2


def test_it_notifies_nobody_who_is_inactive(db):
    gone = UserFactory(is_active=False)

    assert notify(recipient=gone, kind=NEW, title="New candidate", at=AT) is None
    assert not Notification.objects.exists()


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "queue/"])
def test_it_keeps_only_a_path_inside_the_app_as_the_link(csm, url):
    notification = notify(recipient=csm, kind=NEW, title="New candidate", at=AT, url=url)

    assert notification.url == ""


def test_it_sends_many_at_once_in_two_queries_with_mutes_and_keys(csm, other_csm, django_assert_num_queries):
    mute(other_csm, NEW)
    notify(recipient=csm, kind=NEW, title="Already told", at=AT, dedupe_key="a")
    drafts = [
        NotificationDraft(recipient_id=csm.pk, kind=NEW, title="A", dedupe_key="a"),  # told before
        NotificationDraft(recipient_id=csm.pk, kind=NEW, title="B", dedupe_key="b"),
        NotificationDraft(recipient_id=csm.pk, kind=NEW, title="B again", dedupe_key="b"),  # twice in one go
        NotificationDraft(recipient_id=other_csm.pk, kind=NEW, title="Muted", dedupe_key="c"),
    ]

    with django_assert_num_queries(2):
        notifications_send(drafts=drafts, at=AT)

    assert sorted(Notification.objects.values_list("recipient__username", "title")) == [
        ("casey", "Already told"),
        ("casey", "B"),
    ]


# --- The hooks ---------------------------------------------------------------------------------------------------


def test_it_tells_the_owner_about_a_new_candidate_in_their_book_once(csm, account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag()
    first = account.opportunities.get().pk
    account.opportunities.all().delete()  # gone: the next run opens a new one, worth a new notification
    flag(at=AT + dt.timedelta(hours=1))
    flag(at=AT + dt.timedelta(hours=2))  # the same open opportunity: nothing new

    notifications = list(Notification.objects.filter(recipient=csm).order_by("created_at"))
    reopened = account.opportunities.get()
    assert [n.dedupe_key for n in notifications] == [f"new-candidate:{first}", f"new-candidate:{reopened.pk}"]
    assert notifications[-1].title == f"New candidate: {account.name} (score 65)"
    assert notifications[-1].url == f"/accounts/{account.pk}/#opportunity-{reopened.pk}"
    assert notifications[-1].kind == NEW and notifications[-1].account == account


def test_it_tells_nobody_about_a_candidate_on_an_account_without_an_owner(db):
    account = AccountFactory(owner=None)
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag()

    assert account.opportunities.exists() and not Notification.objects.exists()


def snoozed(account, *, until):
    return OpportunityFactory(account=account, outcome=Outcome.SNOOZED, snoozed_until=until, closed_at=AT)


def test_it_tells_the_owner_when_a_snooze_runs_out_once(csm, account):
    back = snoozed(account, until=AS_OF)
    snoozed(AccountFactory(owner=csm), until=AS_OF + dt.timedelta(days=1))  # not yet
    snoozed(AccountFactory(owner=csm), until=AS_OF - dt.timedelta(days=30))  # told long ago

    snoozes_returned_notify(on=AS_OF, at=AT)
    snoozes_returned_notify(on=AS_OF, at=AT + dt.timedelta(hours=1))

    notification = Notification.objects.get(kind=Notification.Kind.SNOOZE_RETURNED)
    assert (notification.recipient, notification.title) == (csm, f"Back from snooze: {account.name}")
    assert notification.dedupe_key == f"snooze-returned:{back.pk}:{AS_OF.isoformat()}"


def test_it_catches_up_a_snooze_that_ran_out_on_a_day_the_job_did_not_run(csm, account):
    snoozed(account, until=AS_OF - dt.timedelta(days=1))

    snoozes_returned_notify(on=AS_OF, at=AT)

    assert Notification.objects.filter(kind=Notification.Kind.SNOOZE_RETURNED).count() == 1


def test_it_tells_the_owner_when_billing_closes_their_opportunity_as_won(csm, account):
    opportunity = OpportunityFactory(account=account)
    movement = MrrMovementFactory(account=account, occurred_on=dt.date.today(), mrr_after=Decimal("99.00"))

    assert opportunities_close_won_by_billing(movements=[movement], at=AT) == [opportunity.pk]

    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.title) == (
        csm,
        Notification.Kind.BILLING_UPGRADE,
        f"Upgrade closed by billing: {account.name}",
    )
    assert notification.dedupe_key == f"billing-won:{opportunity.pk}"


def _running_experiment(admin_user, *, winner: bool):
    play = Play.objects.create(name="Seats at the limit")
    experiment = experiment_create(
        play=play, name="Subject line", variants=[VariantSpec(name="Urgent")], by=admin_user, at=AT
    )
    experiment_start(experiment=experiment, by=admin_user, at=AT)
    urgent = experiment.variants.get()
    # Urgent converts 20 of 40 (a clear winner) or 3 of 40 (no telling), control 2 of 40.
    for arm, converted in ((urgent, 20 if winner else 3), (None, 2)):
        for index in range(40):
            account = AccountFactory()
            Assignment.objects.create(experiment=experiment, account=account, variant=arm, assigned_at=AT)
            if index < converted:
                MrrMovementFactory(account=account, occurred_on=AT.date() + dt.timedelta(days=2))
    return experiment


def test_it_tells_every_admin_once_when_an_experiment_reaches_significance(admin_user, csm):
    other_admin = UserFactory(role="Admin")
    experiment = _running_experiment(admin_user, winner=True)

    experiments_significant_notify(at=AT)
    experiments_significant_notify(at=AT + dt.timedelta(days=1))

    notified = Notification.objects.filter(kind=Notification.Kind.EXPERIMENT_SIGNIFICANT)
    assert sorted(notified.values_list("recipient_id", flat=True)) == sorted([admin_user.pk, other_admin.pk])
    assert {n.dedupe_key for n in notified} == {f"experiment-significant:{experiment.pk}"}
    assert notified.first().url == f"/settings/experiments/{experiment.pk}/"
    assert "Urgent wins" in notified.first().title


def test_it_says_nothing_while_an_experiment_has_no_winner(admin_user):
    _running_experiment(admin_user, winner=False)

    experiments_significant_notify(at=AT)

    assert not Notification.objects.exists()
