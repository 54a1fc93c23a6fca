"""CSV import pages for managers and admins: upload, follow the progress, read or download the errors.

Kept apart from views.py: the import is one resource with its own four URLs.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from accounts.csv_export import csv_response
from accounts.import_forms import ImportUploadForm
from accounts.imports import FORMATS, MAX_BYTES, MAX_REPORTED_ERRORS, MAX_ROWS, import_job_create, import_progress
from accounts.models import ImportJob
from accounts.roles import is_manager_or_admin

RECENT_JOBS = 20
ERRORS_ON_PAGE = 200


def _require_manager(request: HttpRequest) -> None:
    if not is_manager_or_admin(request.user):
        raise PermissionDenied("Imports are for managers and admins.")


@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    """The upload form and the recent imports; a valid upload becomes a queued job and opens its page."""
    _require_manager(request)
    status = 200
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            job = import_job_create(
                kind=form.cleaned_data["kind"],
                filename=form.cleaned_data["file"].name,
                upload=form.cleaned_data["checked"],
                all_or_nothing=form.cleaned_data["on_error"] == "reject",
                by=request.user,
                at=timezone.now(),
            )
            return redirect(job)
        status = 422
    else:
        form = ImportUploadForm(initial={"kind": request.GET.get("kind", ImportJob.Kind.USAGE)})
    jobs = ImportJob.objects.select_related("created_by").defer("content", "errors").order_by("-created_at")
    context = {
        "form": form,
        "jobs": jobs[:RECENT_JOBS],
        "formats": FORMATS.values(),
        "max_mb": MAX_BYTES // 1024 // 1024,
        "max_rows": MAX_ROWS,
    }
    return render(request, "accounts/imports/list.html", context, status=status)


@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: its progress (polled by htmx while it runs), its counts and its error report."""
    _require_manager(request)
    job = get_object_or_404(ImportJob.objects.select_related("created_by").defer("content"), pk=pk)
    processed = import_progress(job)
    context = {
        "job": job,
        "processed": processed,
        "percent": round(100 * processed / job.total_rows) if job.total_rows else 100,
        "errors": job.errors[:ERRORS_ON_PAGE],
        "errors_truncated": job.error_count > ERRORS_ON_PAGE,
        "max_reported": MAX_REPORTED_ERRORS,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "accounts/imports/detail.html#status" if partial else "accounts/imports/detail.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
def import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    """The error report as CSV: row, column, message and the cell as it was in the file."""
    _require_manager(request)
    job = get_object_or_404(ImportJob.objects.only("pk", "errors"), pk=pk)
    rows = ([e["row"], e["column"], e["message"], e["value"]] for e in job.errors)
    return csv_response(filename=f"import-{job.pk}-errors.csv", header=["row", "column", "message", "value"], rows=rows)


@require_GET
def import_template(request: HttpRequest, kind: str) -> HttpResponse:
    """An example file of each kind, with every column it may hold."""
    _require_manager(request)
    fmt = FORMATS.get(kind)
    if fmt is None:
        raise Http404("No such kind of import.")
    return csv_response(filename=f"{kind}-template.csv", header=fmt.columns, rows=[fmt.example])
