"""The pipeline: refresh then flag, under a lock, safe to repeat or to resume after a crash."""

import datetime as dt

import pytest
from django.core.management import call_command

from accounts.models import AccountIndicator, UsageSnapshot
from accounts.services import account_indicators_refresh
from opportunities.models import Opportunity
from opportunities.pipeline import PipelineBusy, lock_acquire, lock_release, pipeline_lock, run_pipeline
from opportunities.tasks import run_pipeline as run_pipeline_task
from tests.factories import AccountFactory, metric

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def growing_accounts(csm):
    accounts = []
    for i in range(6):
        account = AccountFactory(owner=csm)
        UsageSnapshot.objects.bulk_create(
            UsageSnapshot(
                account=account,
                metric=metric("storage_gb"),
                value=5 + 0.1 * d + i * 0.2,
                captured_on=AS_OF - dt.timedelta(days=29 - d),
            )
            for d in range(30)
        )
        accounts.append(account)
    return accounts


def indicator_table():
    return sorted(
        AccountIndicator.objects.values_list(
            "account_id", "metric_id", "latest", "utilization", "slope_per_day", "projected_limit_on"
        )
    )


def test_it_refreshes_and_flags_in_one_run(growing_accounts):
    result = run_pipeline(as_of=AS_OF)

    assert result["accounts"] == 6
    assert result["created"] == Opportunity.objects.open().count() > 0


def test_it_is_safe_to_run_twice(growing_accounts):
    run_pipeline(as_of=AS_OF)
    before = indicator_table(), Opportunity.objects.count()

    second = run_pipeline(as_of=AS_OF)

    assert (indicator_table(), Opportunity.objects.count()) == before
    assert second["created"] == 0


def test_it_repairs_a_run_that_was_killed_half_way(growing_accounts):
    run_pipeline(as_of=AS_OF)
    clean = indicator_table()
    AccountIndicator.objects.all().delete()
    # A killed run leaves only its first chunks committed.
    account_indicators_refresh(as_of=AS_OF, account_ids=[a.pk for a in growing_accounts[:2]])

    run_pipeline(as_of=AS_OF)

    assert indicator_table() == clean


def test_it_refuses_to_overlap_a_running_pipeline(growing_accounts):
    with pipeline_lock(), pytest.raises(PipelineBusy):
        run_pipeline(as_of=AS_OF)


def test_it_releases_the_lock_only_for_its_holder():
    token = lock_acquire()
    lock_release("someone-else")
    assert lock_acquire() is None

    lock_release(token)
    assert lock_acquire() is not None


def test_the_task_chain_runs_both_steps_and_frees_the_lock(growing_accounts, eager_celery):
    run_pipeline_task.delay(as_of=AS_OF.isoformat())

    assert AccountIndicator.objects.count() == 6 * 5
    assert Opportunity.objects.open().exists()
    token = lock_acquire()
    assert token is not None
    lock_release(token)


def test_the_command_runs_the_pipeline(growing_accounts, capsys):
    call_command("run_pipeline", as_of=AS_OF)

    assert '"accounts": 6' in capsys.readouterr().out
    assert Opportunity.objects.open().exists()


def test_new_usage_refreshes_and_rescores_its_accounts_once_committed(
    growing_accounts, eager_celery, django_capture_on_commit_callbacks
):
    from accounts.tasks import refresh_after_ingestion

    touched = growing_accounts[1:3]  # both above 80% of their storage
    with django_capture_on_commit_callbacks(execute=True):
        refresh_after_ingestion(account_ids=[a.pk for a in touched], as_of=AS_OF)

    assert AccountIndicator.objects.filter(account__in=touched).count() == 2 * 5
    assert AccountIndicator.objects.exclude(account__in=touched).count() == 0
    assert set(Opportunity.objects.open().values_list("account_id", flat=True)) == {a.pk for a in touched}


def test_a_full_run_fans_the_refresh_out_in_chunks_and_flags_once_the_last_is_done(
    growing_accounts, eager_celery, monkeypatch
):
    from opportunities import tasks

    chunks = []
    real_chunk = tasks.refresh_chunk.run

    def spy(**kwargs):
        chunks.append((kwargs["first_id"], kwargs["last_id"]))
        # Flagging must not start before every chunk is refreshed.
        assert not Opportunity.objects.exists()
        real_chunk(**kwargs)

    monkeypatch.setattr(tasks, "PIPELINE_CHUNK_ACCOUNTS", 4)
    monkeypatch.setattr(tasks.refresh_chunk, "run", spy)

    run_pipeline_task.delay(as_of=AS_OF.isoformat())

    ids = sorted(a.pk for a in growing_accounts)
    assert chunks == [(ids[0], ids[3]), (ids[4], ids[5])]
    assert AccountIndicator.objects.filter(account_id__in=ids, metric=metric("storage_gb")).count() == 6
    assert Opportunity.objects.open().count() > 0
    token = lock_acquire()
    assert token is not None, "the flagging released the pipeline lock"
    lock_release(token)


def test_a_failing_chunk_releases_the_lock_so_the_next_beat_can_run(growing_accounts, eager_celery, monkeypatch):
    from opportunities import tasks

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "account_indicators_refresh", broken)

    with pytest.raises(RuntimeError):
        run_pipeline_task.delay(as_of=AS_OF.isoformat())

    token = lock_acquire()
    assert token is not None
    lock_release(token)
