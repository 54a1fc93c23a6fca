"""CSV downloads that are safe to open in a spreadsheet.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and its kin
(CSV injection): such text cells get a leading apostrophe. Numbers stay numbers, negative ones included.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.http import StreamingHttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> StreamingHttpResponse:
    """Stream `rows` under `header` as a UTF-8 CSV attachment (with a BOM, so that Excel reads it as UTF-8)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")

    def lines():
        yield "\ufeff" + writer.writerow([safe_cell(c) for c in header])
        for row in rows:
            yield writer.writerow([safe_cell(c) for c in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
