"""CSV import of accounts, usage snapshots and subscription changes.

Upload: the file is read as UTF-8 (a byte-order mark is fine), its header checked against the kind's
columns, its rows counted and the whole text stored on an `ImportJob`; a Celery task then imports it.

Import: rows go through the very schemas and services of the JSON API (`accounts.ingest`), a chunk of
`CHUNK_ROWS` rows at a time, inside one transaction with the job's final state. All-or-nothing (the default):
when any row is invalid, every chunk is still checked so that the report names all bad rows, then the
transaction is rolled back and nothing is stored. Otherwise the invalid rows are skipped and reported.
A worker that dies mid-way leaves nothing behind, and the re-delivered task starts the job again.
Importing the same file twice stores nothing new the second time: the services count those rows as
duplicates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.cache import cache
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from accounts import ingest
from accounts.models import ImportJob

logger = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
CHUNK_ROWS = ingest.MAX_ITEMS
MAX_REPORTED_ERRORS = 1000
"""Errors kept on the job (all are counted): a file where every row is wrong needs fixing, not a longer list."""

MAX_CELL_CHARS = 10_000


# --- What each kind of file holds ------------------------------------------------------------------------


def _number(cell: str) -> object:
    """A finite number, or the cell unchanged for the schema to refuse with its own message."""
    try:
        value = float(cell)
    except ValueError:
        return cell
    return value if math.isfinite(value) else cell


def _integer(cell: str) -> object:
    try:
        return int(cell)
    except ValueError:
        return cell


def _money(cell: str) -> object:
    try:
        return Decimal(cell)
    except InvalidOperation:
        return cell


@dataclass(frozen=True, slots=True)
class ImportFormat:
    kind: ImportJob.Kind
    batch: type[ingest.Batch]
    columns: tuple[str, ...]
    required: frozenset[str]
    example: tuple[str, ...]
    converters: dict[str, Callable[[str], object]] = field(default_factory=dict)

    def write(self, batch: ingest.Batch, *, at: dt.datetime) -> ingest.WriteResult:
        if self.kind == ImportJob.Kind.ACCOUNTS:
            return ingest.accounts_upsert(batch=batch, at=at)
        if self.kind == ImportJob.Kind.USAGE:
            return ingest.usage_ingest(batch=batch, today=timezone.localdate(at))
        return ingest.subscriptions_ingest(batch=batch, at=at)


FORMATS: dict[str, ImportFormat] = {
    f.kind: f
    for f in (
        ImportFormat(
            kind=ImportJob.Kind.ACCOUNTS,
            batch=ingest.AccountsIn,
            columns=tuple(ingest.AccountIn.model_fields),
            required=frozenset({"external_id"}),
            example=(
                "acme-42",
                "Acme Analytics",
                "Pro",
                "99.00",
                "USD",
                "monthly",
                "Software",
                "120",
                "EMEA",
                "casey@example.com",
                "2025-03-01",
                "active",
                "",
            ),
            converters={"mrr": _money, "employees": _integer},
        ),
        ImportFormat(
            kind=ImportJob.Kind.USAGE,
            batch=ingest.UsageIn,
            columns=tuple(ingest.SnapshotIn.model_fields),
            required=frozenset(ingest.SnapshotIn.model_fields),
            example=("acme-42", "storage_gb", "87.5", "2026-11-01"),
            converters={"value": _number},
        ),
        ImportFormat(
            kind=ImportJob.Kind.SUBSCRIPTIONS,
            batch=ingest.SubscriptionsIn,
            columns=tuple(ingest.SubscriptionChangeIn.model_fields),
            required=frozenset({"account", "date", "mrr"}),
            example=("acme-42", "2026-11-01", "Pro", "99.00"),
            converters={"mrr": _money},
        ),
    )
}


# --- Reading the file ------------------------------------------------------------------------------------


class UploadError(ValueError):
    """Why an uploaded file cannot be imported at all (the message is shown to the user)."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int
    """The row in a spreadsheet: the header is row 1."""
    cells: dict[str, str]


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). "
            "In a spreadsheet, save it as “CSV UTF-8”."
        ) from None


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon (spreadsheets in many European locales) or tab: whichever the header uses most."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _normalise(column: str) -> str:
    return column.strip().lower().replace(" ", "_").replace("-", "_")


def read_header(text: str, *, kind: str, delimiter: str) -> list[str]:
    """The file's column names, checked against the kind's: required ones present, no unknown or repeated."""
    fmt = FORMATS[kind]
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), None)
    except csv.Error as exc:
        raise UploadError(f"Row 1 cannot be read as CSV: {exc}.") from None
    columns = [_normalise(c) for c in header or []]
    if not any(columns):
        raise UploadError(f"The first row must name the columns: {', '.join(fmt.columns)}.")
    problems = []
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        problems.append(f"Repeated column: {', '.join(repeated)}.")
    unknown = [c for c in columns if c not in fmt.columns]
    if unknown:
        problems.append(f"Unknown column: {', '.join(c or '(blank)' for c in unknown)}.")
    missing = [c for c in fmt.columns if c in fmt.required and c not in columns]
    if missing:
        problems.append(f"Missing column: {', '.join(missing)}.")
    if problems:
        hint = _looks_like(columns, other_than=kind)
        raise UploadError(
            " ".join(problems)
            + f" A {fmt.kind.label.lower()} file has the columns {', '.join(fmt.columns)}"
            + f" ({', '.join(sorted(fmt.required))} required)."
            + (f" These columns look like a {hint.label.lower()} file." if hint else "")
        )
    return columns


def _looks_like(columns: list[str], *, other_than: str) -> ImportJob.Kind | None:
    for fmt in FORMATS.values():
        if fmt.kind != other_than and fmt.required <= set(columns) and set(columns) <= set(fmt.columns):
            return fmt.kind
    return None


def iter_rows(text: str, *, columns: list[str], delimiter: str) -> Iterator[Row]:
    """Data rows as {column: stripped cell}; blank lines are skipped but keep their row number."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader, None)
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UploadError(f"Row {number + 1} cannot be read as CSV: {exc}.") from None
        number += 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            raise UploadError(f"Row {number} has {len(cells)} cells; the header names {len(columns)} columns.")
        if any(len(c) > MAX_CELL_CHARS for c in cells):
            raise UploadError(f"Row {number} has a cell longer than {MAX_CELL_CHARS:,} characters.")
        yield Row(number, {column: cell.strip() for column, cell in zip(columns, cells, strict=False)})


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    text: str
    delimiter: str
    rows: int


def upload_check(*, data: bytes, kind: str) -> CheckedUpload:
    """Everything that can be told about a file before importing it: size, encoding, header, row count."""
    if not data:
        raise UploadError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise UploadError(f"The file is over the limit of {filesizeformat(MAX_BYTES)}. Split it into smaller files.")
    text = decode(data)
    if "\x00" in text:
        raise UploadError("The file holds NUL characters: it is not a CSV text file.")
    delimiter = sniff_delimiter(text)
    columns = read_header(text, kind=kind, delimiter=delimiter)
    rows = 0
    for _ in iter_rows(text, columns=columns, delimiter=delimiter):
        rows += 1
        if rows > MAX_ROWS:
            raise UploadError(f"The file has more than {MAX_ROWS:,} rows, the limit. Split it into smaller files.")
    if not rows:
        raise UploadError("The file has a header but no rows.")
    return CheckedUpload(text=text, delimiter=delimiter, rows=rows)


# --- Jobs ------------------------------------------------------------------------------------------------


def import_job_create(
    *, kind: str, filename: str, upload: CheckedUpload, all_or_nothing: bool, by, at: dt.datetime
) -> ImportJob:
    """Store a checked file as a queued job and enqueue its import once the job is committed."""
    from accounts.tasks import run_import  # the tasks module imports the ingest services, as this one does

    job = ImportJob.objects.create(
        kind=kind,
        filename=filename[:255],
        content=upload.text,
        delimiter=upload.delimiter,
        total_rows=upload.rows,
        all_or_nothing=all_or_nothing,
        created_by=by,
        created_at=at,
    )
    transaction.on_commit(lambda: _enqueue(run_import, job.pk))
    return job


def _enqueue(task, job_id: int) -> None:
    # The job is stored: if the broker cannot take it now, `imports_resume` enqueues it on its next run.
    try:
        task.delay(job_id=job_id)
    except task.OperationalError:
        logger.warning("Import %s stored but not enqueued; it will be resumed", job_id, exc_info=True)


STALLED_QUEUED = dt.timedelta(minutes=2)


def imports_resume(*, now: dt.datetime) -> list[int]:
    """Enqueue again the imports left behind: queued for a while (their task never reached the broker), or
    running for longer than a task may run (their worker died). Returns their ids."""
    from django.conf import settings
    from django.db.models import Q

    from accounts.tasks import run_import

    running_too_long = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    ids = list(
        ImportJob.objects.filter(
            Q(status=ImportJob.Status.QUEUED, created_at__lt=now - STALLED_QUEUED)
            | Q(status=ImportJob.Status.RUNNING, started_at__lt=running_too_long)
        ).values_list("pk", flat=True)
    )
    for job_id in ids:
        _enqueue(run_import, job_id)
    return ids


def _progress_key(job_id: int) -> str:
    return f"import-progress:{job_id}"


def import_progress(job: ImportJob) -> int:
    """Rows processed so far. A running import writes in one transaction, so its count lives in the cache."""
    if job.status != ImportJob.Status.RUNNING:
        return job.processed_rows
    try:
        return min(int(cache.get(_progress_key(job.pk)) or 0), job.total_rows)
    except Exception:  # a cache outage hides the progress, it does not break the page
        logger.warning("Import progress unavailable from the cache", exc_info=True)
        return 0


def _report_progress(job_id: int, rows: int) -> None:
    try:
        cache.set(_progress_key(job_id), rows, timeout=6 * 3600)
    except Exception:
        logger.warning("Import progress not recorded in the cache", exc_info=True)


class _RollBack(Exception):
    """Leaves the import's transaction, undoing every chunk written so far."""


@dataclass(slots=True)
class _Outcome:
    result: ingest.WriteResult = field(default_factory=ingest.WriteResult)
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    skipped: int = 0
    processed: int = 0

    def add_error(self, row: Row, column: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            value = row.cells.get(column, "") if column else ""
            self.errors.append({"row": row.number, "column": column or "", "message": message, "value": value})


def import_job_run(*, job_id: int, at: dt.datetime) -> ImportJob | None:
    """Import a queued job's file (see the module's docstring). A finished job is left as it is.

    The job's end state (counts, status) commits with the rows it stored: there is no moment where data is
    in but the job still says it is running, nor the reverse.
    """
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING, started_at=at, processed_rows=0)
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    _report_progress(job.pk, 0)
    outcome = _Outcome()
    try:
        with transaction.atomic():
            _import_rows(job, outcome=outcome, at=at)
            if outcome.error_count and job.all_or_nothing:
                raise _RollBack
            _finish(job, outcome, status=ImportJob.Status.SUCCEEDED)
    except _RollBack:
        outcome.result = ingest.WriteResult()
        _finish(job, outcome, status=ImportJob.Status.FAILED)
    except Exception as exc:
        logger.exception("Import %s stopped", job.pk)
        _finish(
            job,
            _Outcome(),
            status=ImportJob.Status.FAILED,
            failure=f"The import stopped on an unexpected error ({type(exc).__name__}); nothing was stored.",
        )
    return job


def _finish(job: ImportJob, outcome: _Outcome, *, status: str, failure: str = "") -> None:
    job.status = status
    job.processed_rows = job.total_rows if status == ImportJob.Status.SUCCEEDED else outcome.processed
    job.created = outcome.result.created
    job.updated = outcome.result.updated
    job.duplicates = outcome.result.duplicates
    job.skipped = outcome.skipped if status == ImportJob.Status.SUCCEEDED else 0
    job.error_count = outcome.error_count
    job.errors = outcome.errors
    job.failure = failure
    job.finished_at = timezone.now()
    job.save()


def _import_rows(job: ImportJob, *, outcome: _Outcome, at: dt.datetime) -> None:
    fmt = FORMATS[job.kind]
    columns = read_header(job.content, kind=job.kind, delimiter=job.delimiter)
    chunk: list[Row] = []
    for row in iter_rows(job.content, columns=columns, delimiter=job.delimiter):
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            _import_chunk(fmt, chunk, outcome=outcome, all_or_nothing=job.all_or_nothing, at=at)
            _report_progress(job.pk, outcome.processed)
            chunk = []
    if chunk:
        _import_chunk(fmt, chunk, outcome=outcome, all_or_nothing=job.all_or_nothing, at=at)
        _report_progress(job.pk, outcome.processed)


def _item(fmt: ImportFormat, row: Row) -> dict[str, object]:
    """The API item a row stands for: empty cells are left out, numbers parsed where the schema wants them."""
    item: dict[str, object] = {}
    for column, cell in row.cells.items():
        if cell:
            convert = fmt.converters.get(column)
            item[column] = convert(cell) if convert else cell
    return item


def _import_chunk(
    fmt: ImportFormat, rows: list[Row], *, outcome: _Outcome, all_or_nothing: bool, at: dt.datetime
) -> None:
    """Validate and write one chunk; with all_or_nothing off, write again without the rows found invalid."""
    pending = rows
    while pending:
        batch = fmt.batch.model_validate({fmt.batch.collection: [_item(fmt, row) for row in pending]})
        batch.label_items([f"row {row.number}" for row in pending])
        try:
            result = fmt.write(batch, at=at)
        except ingest.IngestError as exc:
            bad = set()
            for error in exc.errors:
                outcome.add_error(pending[error.index], error.field, error.message)
                bad.add(error.index)
            if all_or_nothing:
                break
            outcome.skipped += len(bad)
            pending = [row for i, row in enumerate(pending) if i not in bad]
            continue
        outcome.result.created += result.created
        outcome.result.updated += result.updated
        outcome.result.duplicates += result.duplicates
        break
    outcome.processed += len(rows)
