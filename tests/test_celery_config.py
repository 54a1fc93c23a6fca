"""The Celery app is set up so that a crashed worker, a slow task or a backlog never loses or doubles work."""

import datetime as dt

import pytest
from celery.schedules import crontab

from upsell_crm.celery import app


def next_run(schedule: crontab, after: dt.datetime) -> dt.datetime:
    last_run_at, delta, _ = schedule.remaining_delta(after)
    return last_run_at + delta


def shortest_gap(schedule: crontab, runs: int = 200) -> dt.timedelta:
    """The shortest time between two consecutive runs of a crontab over the next `runs` runs."""
    at = next_run(schedule, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    gaps = []
    for _ in range(runs):
        following = next_run(schedule, at)
        gaps.append(following - at)
        at = following
    return min(gaps)


def test_it_speaks_json_only():
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"


def test_it_acknowledges_a_task_only_once_it_finished():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_it_lets_a_worker_hold_one_task_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_it_bounds_how_long_a_task_may_run():
    assert app.conf.task_soft_time_limit
    assert app.conf.task_time_limit
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_it_keeps_a_running_task_from_being_handed_to_a_second_worker():
    # Redis redelivers an unacknowledged message after the visibility timeout; with late acks that must
    # be longer than any task may run.
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


def test_it_has_a_beat_schedule():
    assert app.conf.beat_schedule


@pytest.mark.parametrize("name", sorted(app.conf.beat_schedule))
def test_it_runs_each_periodic_job_on_a_crontab_that_expires_before_the_next_run(name):
    entry = app.conf.beat_schedule[name]
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab), "interval schedules drift with every beat restart; use crontab"
    expires = entry.get("options", {}).get("expires")
    assert expires, "a run still queued when the next one is due must be dropped, not run twice"
    assert dt.timedelta(seconds=expires) < shortest_gap(schedule)


@pytest.mark.parametrize("name", sorted(app.conf.beat_schedule))
def test_it_schedules_only_tasks_that_exist(name):
    app.autodiscover_tasks(force=True)
    assert app.conf.beat_schedule[name]["task"] in app.tasks
