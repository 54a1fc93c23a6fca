"""The import pages: managers and admins upload a CSV, follow its progress and read its errors."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import imports
from accounts.models import ImportJob, UsageSnapshot
from tests.factories import AccountFactory

URL = reverse("accounts:imports")


def upload(client, text: str | bytes, *, kind="usage", on_error="reject", name="usage.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(URL, {"kind": kind, "on_error": on_error, "file": SimpleUploadedFile(name, data, "text/csv")})


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def acme(db):
    return AccountFactory(external_id="acme", name="Acme")


def test_it_refuses_csms_every_import_page(csm_client, manager, acme):
    job = ImportJob.objects.create(
        kind="usage", filename="f.csv", content="x", total_rows=1, created_by=manager, created_at="2026-11-01T00:00Z"
    )
    for url in (
        URL,
        reverse("accounts:import_detail", args=[job.pk]),
        reverse("accounts:import_errors", args=[job.pk]),
        reverse("accounts:import_template", args=["usage"]),
    ):
        assert csm_client.get(url).status_code == 403, url
    response = upload(csm_client, "account,metric,value,date\nacme,seats,1,2026-11-01\n")
    assert response.status_code == 403
    assert ImportJob.objects.count() == 1


def test_a_manager_uploads_a_file_and_lands_on_its_finished_import(
    manager_client, acme, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(manager_client, "account,metric,value,date\nacme,seats,3,2026-11-01\n")

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("accounts:import_detail", args=[job.pk])
    page = manager_client.get(response.url)
    assert page.status_code == 200
    assert job.status == ImportJob.Status.SUCCEEDED
    assert 'value="1" max="1"' in page.text
    assert UsageSnapshot.objects.filter(account=acme).count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "The file is empty."),
        ("account,metric,value,date\nCafé,seats,1,2026-11-01\n".encode("latin-1"), "not UTF-8"),
        (b"account,metric,amount\nacme,seats,1\n", "Unknown column: amount."),
        (b"account,metric,value,date\n", "has a header but no rows"),
    ],
)
def test_it_answers_a_file_it_cannot_import_with_the_reason_and_no_job(manager_client, acme, text, message):
    response = upload(manager_client, text)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_it_names_the_size_limit(manager_client, monkeypatch):
    monkeypatch.setattr(imports, "MAX_BYTES", 1024 * 1024)
    response = upload(manager_client, b"account,metric,value,date\n" + b"a,seats,1,2026-11-01\n" * 60_000)

    assert response.status_code == 422
    assert "over the limit of 1.0\xa0MB" in response.content.decode()


def test_it_requires_a_kind_and_a_file(manager_client):
    response = manager_client.post(URL, {"on_error": "reject"})

    assert response.status_code == 422
    assert ImportJob.objects.count() == 0


def test_it_needs_the_csrf_token(manager, acme):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)

    response = upload(client, "account,metric,value,date\nacme,seats,1,2026-11-01\n")

    assert response.status_code == 403
    assert ImportJob.objects.count() == 0


def test_a_running_import_polls_for_its_progress_and_a_finished_one_stops(manager_client, manager):
    job = ImportJob.objects.create(
        kind="usage",
        filename="f.csv",
        content="x",
        total_rows=4,
        status=ImportJob.Status.RUNNING,
        created_by=manager,
        created_at="2026-11-01T00:00Z",
    )
    imports._report_progress(job.pk, 2)
    url = reverse("accounts:import_detail", args=[job.pk])

    running = manager_client.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in running.text
    assert "50%" in running.text
    assert "<html" not in running.text, "htmx gets the status partial alone"

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.SUCCEEDED, processed_rows=4)
    finished = manager_client.get(url, headers={"HX-Request": "true"})
    assert "hx-trigger" not in finished.text
    assert "100%" in finished.text
    assert finished.headers["Vary"].count("HX-Request") == 1


def test_the_error_report_lists_row_column_message_and_downloads_as_safe_csv(manager_client, acme):
    upload(
        manager_client,
        'account,metric,value,date\nacme,seats,1,2026-11-01\n=HYPERLINK("x"),seats,1,2026-11-01\n',
    )
    job = ImportJob.objects.get()
    from accounts.imports import import_job_run

    import_job_run(job_id=job.pk, at=job.created_at)

    page = manager_client.get(reverse("accounts:import_detail", args=[job.pk])).text
    assert "Nothing was stored" in page
    assert "No account with external_id" in page
    download = manager_client.get(reverse("accounts:import_errors", args=[job.pk]))
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body))) == [
        ["row", "column", "message", "value"],
        ["3", "account", "No account with external_id '=HYPERLINK(\"x\")'.", '\'=HYPERLINK("x")'],
    ]
    assert UsageSnapshot.objects.count() == 0


def test_a_template_of_each_kind_downloads_with_its_columns(manager_client):
    response = manager_client.get(reverse("accounts:import_template", args=["subscriptions"]))
    body = b"".join(response.streaming_content).decode("utf-8-sig")

    assert body.splitlines()[0] == "account,date,plan,mrr"
    assert manager_client.get(reverse("accounts:import_template", args=["invoices"])).status_code == 404


def test_the_import_list_shows_recent_jobs_in_a_fixed_number_of_queries(
    manager_client, manager, django_assert_max_num_queries
):
    for n in range(5):
        ImportJob.objects.create(
            kind="usage",
            filename=f"f{n}.csv",
            content="x",
            total_rows=1,
            created_by=manager,
            created_at="2026-11-01T00:00Z",
        )
    with django_assert_max_num_queries(6):
        response = manager_client.get(URL)

    assert response.status_code == 200
    assert response.text.count("f4.csv") == 1
