"""Lookups the ORM lacks."""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models.lookups import In


class AnyOf(In):
    """`field IN (values)`, which PostgreSQL is sent as `field = ANY(%s)` with the values as one array.

    Used as an expression: `queryset.filter(AnyOf(F("pk"), ids))`. An IN list takes a parameter per value:
    Django prepares each one, and psycopg keeps the parsed form only of statements with at most 50
    parameters, so the queue's row queries for a page of 50 ids were parsed afresh on every request. As one
    array the statement is the same for any number of ids. Other databases get the IN list.
    """

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        # As IN does: NULL equals nothing, and an empty list matches nothing.
        values = [value for value in dict.fromkeys(self.rhs) if value is not None]
        if not values:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s)", (*lhs_params, values)
