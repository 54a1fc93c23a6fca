"""CSV import: the file is checked on upload, then imported in chunks, all or nothing, through the API's rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import imports
from accounts.imports import UploadError, import_job_create, import_job_run, import_progress, upload_check
from accounts.models import Account, ImportJob, MrrMovement, UsageSnapshot
from opportunities.models import Outcome, Stage
from tests.factories import AccountFactory, OpportunityFactory, plan

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def run(manager, text: str, kind: str = "usage", *, all_or_nothing: bool = True) -> ImportJob:
    """Upload `text` as `manager` and import it, as the worker would."""
    upload = upload_check(data=text.encode(), kind=kind)
    job = import_job_create(
        kind=kind, filename="file.csv", upload=upload, all_or_nothing=all_or_nothing, by=manager, at=NOW
    )
    import_job_run(job_id=job.pk, at=NOW)
    job.refresh_from_db()
    return job


def usage_csv(*rows: str) -> str:
    return "account,metric,value,date\n" + "\n".join(rows) + "\n"


@pytest.fixture
def acme(db):
    return AccountFactory(external_id="acme", name="Acme", plan=plan("Basic"))


def values(account) -> dict:
    return {
        (s.metric.key, s.captured_on.isoformat()): s.value
        for s in UsageSnapshot.objects.filter(account=account).select_related("metric")
    }


class TestUploadChecks:
    def test_it_refuses_an_empty_file(self):
        with pytest.raises(UploadError, match="empty"):
            upload_check(data=b"", kind="usage")

    def test_it_refuses_a_file_over_the_size_limit_with_the_limit_in_the_message(self, monkeypatch):
        monkeypatch.setattr(imports, "MAX_BYTES", 2048)
        with pytest.raises(UploadError, match=r"over the limit of 2\.0"):
            upload_check(data=b"x" * 2049, kind="usage")

    def test_it_refuses_more_rows_than_the_limit(self, monkeypatch):
        monkeypatch.setattr(imports, "MAX_ROWS", 2)
        text = usage_csv("a,seats,1,2026-11-01", "a,seats,1,2026-11-02", "a,seats,1,2026-11-03")
        with pytest.raises(UploadError, match="more than 2 rows"):
            upload_check(data=text.encode(), kind="usage")

    def test_it_refuses_text_that_is_not_utf8_and_says_how_to_save_it(self):
        with pytest.raises(UploadError, match=r"not UTF-8.*CSV UTF-8"):
            upload_check(data="account,metric,value,date\nCafé,seats,1,2026-11-01\n".encode("latin-1"), kind="usage")

    def test_it_reads_utf8_with_a_byte_order_mark(self):
        checked = upload_check(data=b"\xef\xbb\xbf" + usage_csv("a,seats,1,2026-11-01").encode(), kind="usage")
        assert checked.rows == 1
        assert checked.text.startswith("account,")

    def test_it_names_missing_and_unknown_columns(self):
        with pytest.raises(UploadError) as exc:
            upload_check(data=b"account,metric,amount\na,seats,1\n", kind="usage")
        assert "Unknown column: amount." in str(exc.value)
        assert "Missing column: value, date." in str(exc.value)

    def test_it_says_when_the_columns_are_those_of_another_kind(self):
        with pytest.raises(UploadError, match="look like a usage snapshots file"):
            upload_check(data=usage_csv("a,seats,1,2026-11-01").encode(), kind="subscriptions")

    def test_it_refuses_a_header_without_rows(self):
        with pytest.raises(UploadError, match="no rows"):
            upload_check(data=b"account,metric,value,date\n\n", kind="usage")

    def test_it_refuses_a_row_with_more_cells_than_columns(self):
        with pytest.raises(UploadError, match="Row 3 has 5 cells"):
            upload_check(data=usage_csv("a,seats,1,2026-11-01", "a,seats,1,2026-11-02,x").encode(), kind="usage")

    def test_it_accepts_semicolons_and_header_names_in_any_case(self):
        checked = upload_check(data=b"Account;Metric;Value;Date\na;seats;1;2026-11-01\n", kind="usage")
        assert (checked.delimiter, checked.rows) == (";", 1)


class TestUsageImport:
    def test_it_stores_every_row_and_counts_them(self, manager, acme):
        job = run(manager, usage_csv("acme,seats,3,2026-11-01", "acme,storage_gb,7.5,2026-11-01"))

        assert job.status == ImportJob.Status.SUCCEEDED
        assert (job.created, job.updated, job.duplicates, job.processed_rows) == (2, 0, 0, 2)
        assert values(acme) == {("seats", "2026-11-01"): 3.0, ("storage_gb", "2026-11-01"): 7.5}

    def test_it_stores_nothing_when_one_row_is_bad_and_reports_row_column_and_message(self, manager, acme):
        job = run(
            manager,
            usage_csv("acme,seats,3,2026-11-01", "acme,seats,lots,2026-11-02", "nobody,seats,1,2026-11-01"),
        )

        assert job.status == ImportJob.Status.FAILED
        assert UsageSnapshot.objects.count() == 0
        assert (job.created, job.error_count) == (0, 2)
        assert job.errors == [
            {"row": 3, "column": "value", "message": "Expected a number.", "value": "lots"},
            {"row": 4, "column": "account", "message": "No account with external_id 'nobody'.", "value": "nobody"},
        ]

    def test_it_stores_nothing_when_the_bad_row_is_in_a_later_chunk(self, manager, acme, monkeypatch):
        monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
        rows = [f"acme,seats,{n},2026-10-{n:02d}" for n in range(1, 6)] + ["acme,seats,-1,2026-10-06"]
        job = run(manager, usage_csv(*rows))

        assert job.status == ImportJob.Status.FAILED
        assert UsageSnapshot.objects.count() == 0
        assert [(e["row"], e["column"]) for e in job.errors] == [(7, "value")]

    def test_it_imports_the_valid_rows_and_skips_the_rest_when_asked(self, manager, acme):
        job = run(manager, usage_csv("acme,seats,3,2026-11-01", "acme,seats,3,11/02/2026"), all_or_nothing=False)

        assert job.status == ImportJob.Status.SUCCEEDED
        assert (job.created, job.skipped, job.error_count) == (1, 1, 1)
        assert job.errors[0] == {
            "row": 3,
            "column": "date",
            "message": "Use a date as YYYY-MM-DD.",
            "value": "11/02/2026",
        }
        assert values(acme) == {("seats", "2026-11-01"): 3.0}

    def test_it_stores_nothing_new_when_the_same_file_is_imported_again(self, manager, acme):
        text = usage_csv("acme,seats,3,2026-11-01", "acme,storage_gb,7.5,2026-11-01")
        run(manager, text)
        again = run(manager, text)

        assert (again.created, again.updated, again.duplicates) == (0, 0, 2)
        assert UsageSnapshot.objects.count() == 2

    def test_it_names_a_repeated_row_by_its_row_number(self, manager, acme):
        job = run(manager, usage_csv("acme,seats,3,2026-11-01", "acme,seats,4,2026-11-01"))

        assert job.errors[0]["message"] == "Repeats row 2 (same account, metric and date) with another value."

    def test_it_skips_blank_lines_but_keeps_spreadsheet_row_numbers(self, manager, acme):
        job = run(manager, "account,metric,value,date\nacme,seats,3,2026-11-01\n\nacme,seats,x,2026-11-02\n")

        assert job.errors[0]["row"] == 4

    def test_it_refreshes_the_indicators_of_the_accounts_it_touched(
        self, manager, acme, eager_celery, django_capture_on_commit_callbacks
    ):
        today = timezone.localdate(NOW)
        with django_capture_on_commit_callbacks(execute=True):
            run(manager, usage_csv(f"acme,seats,4,{today.isoformat()}"))

        assert acme.indicators.get(metric__key="seats").latest == 4


class TestAccountsAndSubscriptionsImport:
    def test_it_creates_and_updates_accounts_by_external_id(self, manager, acme):
        text = (
            "external_id,name,plan,mrr,employees,owner_email\n"
            "acme,Acme Inc,,,,\n"
            f"globex,Globex,pro,99.00,120,{manager.email}\n"
        )
        job = run(manager, text, kind="accounts")

        assert (job.status, job.created, job.updated) == (ImportJob.Status.SUCCEEDED, 1, 1)
        acme.refresh_from_db()
        globex = Account.objects.get(external_id="globex")
        assert acme.name == "Acme Inc"
        assert acme.plan == plan("Basic"), "an empty cell leaves the field as it was"
        assert (globex.plan, globex.mrr, globex.employees, globex.owner) == (
            plan("Pro"),
            Decimal("99.00"),
            120,
            manager,
        )

    def test_it_refuses_an_unknown_plan_and_a_non_integer_head_count(self, manager, db):
        job = run(manager, "external_id,name,plan,employees\nx,X,Platinum,12\ny,Y,Pro,12.5\n", kind="accounts")

        assert not Account.objects.filter(external_id__in=["x", "y"]).exists()
        assert [(e["row"], e["column"], e["message"]) for e in job.errors] == [
            (2, "plan", "No plan named 'Platinum'."),
            (3, "employees", "Expected an integer."),
        ]

    def test_a_subscription_upgrade_records_the_movement_and_wins_the_open_opportunity(self, manager, csm, db):
        account = AccountFactory(external_id="initech", owner=csm, plan=plan("Basic"), mrr=Decimal("29.00"))
        opportunity = OpportunityFactory(
            account=account, owner=csm, stage=Stage.PRESENT, identified_at=NOW - dt.timedelta(days=10)
        )

        job = run(manager, "account,date,plan,mrr\ninitech,2026-11-19,Pro,99.00\n", kind="subscriptions")

        assert job.created == 1
        account.refresh_from_db()
        opportunity.refresh_from_db()
        movement = MrrMovement.objects.get(account=account)
        assert (movement.kind, movement.mrr_before, movement.mrr_after) == (
            "expansion",
            Decimal("29.00"),
            Decimal("99.00"),
        )
        assert (account.plan, account.mrr) == (plan("Pro"), Decimal("99.00"))
        assert opportunity.outcome == Outcome.WON

    def test_importing_the_same_subscription_changes_twice_records_each_movement_once(self, manager, db):
        AccountFactory(external_id="initech", plan=plan("Basic"), mrr=Decimal("29.00"))
        text = "account,date,plan,mrr\ninitech,2026-10-01,Pro,99.00\ninitech,2026-11-01,Enterprise,299.00\n"
        run(manager, text, kind="subscriptions")
        again = run(manager, text, kind="subscriptions")

        assert again.created == 0
        assert MrrMovement.objects.count() == 2


class TestJobLifecycle:
    def test_a_finished_job_is_not_imported_twice(self, manager, acme):
        job = run(manager, usage_csv("acme,seats,3,2026-11-01"))
        UsageSnapshot.objects.all().delete()

        assert import_job_run(job_id=job.pk, at=NOW) is None
        assert UsageSnapshot.objects.count() == 0

    def test_an_unexpected_error_fails_the_job_with_a_message_and_stores_nothing(self, manager, acme, monkeypatch):
        def explode(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(imports.ingest, "usage_ingest", explode)
        job = run(manager, usage_csv("acme,seats,3,2026-11-01"))

        assert job.status == ImportJob.Status.FAILED
        assert "unexpected error (RuntimeError)" in job.failure
        assert UsageSnapshot.objects.count() == 0

    def test_progress_of_a_running_job_comes_from_the_cache(self, manager, acme, monkeypatch):
        seen = []
        real_chunk = imports._import_chunk

        def spy(*args, **kwargs):
            real_chunk(*args, **kwargs)
            job = ImportJob.objects.get()
            seen.append(import_progress(job))

        monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
        monkeypatch.setattr(imports, "_import_chunk", spy)
        job = run(manager, usage_csv(*[f"acme,seats,{n},2026-10-{n:02d}" for n in range(1, 6)]))

        assert seen == [0, 2, 4], "each chunk's count is reported once the next chunk starts"
        assert import_progress(job) == 5

    def test_it_resumes_imports_left_queued_or_running_past_the_task_time_limit(self, manager, acme, eager_celery):
        def queued(filename: str, **fields) -> ImportJob:
            upload = upload_check(data=usage_csv("acme,seats,1,2026-11-01").encode(), kind="usage")
            job = import_job_create(
                kind="usage", filename=filename, upload=upload, all_or_nothing=True, by=manager, at=NOW
            )
            ImportJob.objects.filter(pk=job.pk).update(**fields)
            return job

        lost = queued("lost", created_at=NOW - dt.timedelta(minutes=10))
        queued("fresh!", created_at=NOW - dt.timedelta(seconds=30))
        dead = queued("dead", status=ImportJob.Status.RUNNING, started_at=NOW - dt.timedelta(hours=2))
        queued("busy!", status=ImportJob.Status.RUNNING, started_at=NOW - dt.timedelta(minutes=5))

        resumed = imports.imports_resume(now=NOW)

        assert sorted(resumed) == sorted([lost.pk, dead.pk])
        statuses = dict(ImportJob.objects.values_list("filename", "status"))
        assert statuses == {"lost": "succeeded", "dead": "succeeded", "fresh!": "queued", "busy!": "running"}

    def test_an_upload_is_kept_when_the_broker_cannot_take_its_task(
        self, manager, acme, monkeypatch, django_capture_on_commit_callbacks
    ):
        from accounts.tasks import run_import

        def broker_down(**kwargs):
            raise run_import.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        monkeypatch.setattr(run_import, "delay", broker_down)
        upload = upload_check(data=usage_csv("acme,seats,1,2026-11-01").encode(), kind="usage")
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(
                kind="usage", filename="f.csv", upload=upload, all_or_nothing=True, by=manager, at=NOW
            )

        assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.QUEUED
