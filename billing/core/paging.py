"""Admin lists of very large tables (2.5 million seat assignments and more).

Counting every row of an unfiltered list is a full scan on PostgreSQL; its own statistics know the
size closely enough for a page count ("about" is fine when a clerk pages through millions of rows;
once any filter or search applies, the count is exact again).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

ESTIMATE_ABOVE = 100_000


class LargeTablePaginator(Paginator):
    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                               [connection.ops.quote_name(self.object_list.model._meta.db_table)])
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return int(row[0])
        return super().count
