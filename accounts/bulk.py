"""Upserts of many rows in one statement, fast on PostgreSQL and portable elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def upsert(
    model: type[models.Model], rows: Sequence[dict], *, unique_fields: list[str], update_fields: list[str]
) -> None:
    """Insert `rows`, updating `update_fields` where `unique_fields` clash.

    Rows are dicts of field name or attname -> value, with the same keys in every row.

    On PostgreSQL one `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE`: a dozen array
    parameters instead of a dozen parameters a row, which is what makes bulk_create's SQL compilation
    dominate a 100,000-row refresh. Other databases use bulk_create(update_conflicts=True).
    """
    if not rows:
        return
    keys = list(rows[0])
    fields = [model._meta.get_field(key) for key in keys]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**row) for row in rows],
            update_conflicts=True,
            unique_fields=unique_fields,
            update_fields=update_fields,
            batch_size=2000,
        )
        return
    qn = connection.ops.quote_name
    columns = [qn(f.column) for f in fields]
    arrays = [[f.get_db_prep_value(row[key], connection) for row in rows] for key, f in zip(keys, fields, strict=True)]
    casts = [f"%s::{f.rel_db_type(connection) if f.is_relation else f.db_type(connection)}[]" for f in fields]
    conflict = ", ".join(qn(model._meta.get_field(name).column) for name in unique_fields)
    updates = ", ".join(
        f"{qn(model._meta.get_field(name).column)} = EXCLUDED.{qn(model._meta.get_field(name).column)}"
        for name in update_fields
    )
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names come from model metadata
        f"SELECT * FROM unnest({', '.join(casts)}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
