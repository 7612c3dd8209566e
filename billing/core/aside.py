"""Read-only queries run in a second database connection while the caller's connection works.

A billing batch reads several meters; the seat-days alone take as long as all the others together.
On PostgreSQL the others can run in a second connection, on the machine's other core, while the batch's
own connection counts the seat-days. This is only correct when everything those queries read is
committed: `aside_possible()` says so before the batch's transaction begins (no transaction around it
yet, so none of its data can be uncommitted). The queries see what the batch's own would (READ COMMITTED:
each statement sees what was committed when it began), and they take no lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import OperationalError, connection, connections

logger = logging.getLogger(__name__)
T = TypeVar("T")
_UNCONNECTED = object()


def aside_possible() -> bool:
    """True when queries may run beside the caller's connection: PostgreSQL, the setting on, and no
    transaction open (what the queries read can then only be committed data). Call it before entering
    the transaction that will use it."""
    return (settings.BILLING_METERS_ASIDE and connection.vendor == "postgresql"
            and not connection.in_atomic_block)


class Aside:
    """`with Aside(enabled) as aside: result = aside.submit(fn)` then `result()`: fn runs in its own thread
    and database connection (closed after it), or in the caller's when not enabled, or when no second
    connection can be opened (the server's max_connections reached: logged, and read in turn). Leaving
    the block waits for the thread."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Aside:
        if self.enabled:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="billing-aside")
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def submit(self, fn: Callable[[], T]) -> Callable[[], T]:
        if self.pool is None:
            return fn
        future = self.pool.submit(_in_own_connection, fn)
        fallback: list[T] = []

        def result() -> T:
            value = future.result()
            if value is not _UNCONNECTED:
                return value
            if not fallback:  # read in turn, once however often the result is asked for
                fallback.append(fn())
            return fallback[0]

        return result


def _connect() -> None:
    connection.ensure_connection()


def _in_own_connection(fn: Callable[[], T]) -> T | object:
    try:
        try:
            _connect()  # this thread's own connection
        except OperationalError:
            logger.warning("no second database connection for the meters; reading them in turn", exc_info=True)
            return _UNCONNECTED
        if settings.BILLING_WORK_MEM:
            with connection.cursor() as cursor:  # for its session: it is closed after
                cursor.execute("SELECT set_config('work_mem', %s, false)", [settings.BILLING_WORK_MEM])
        return fn()
    finally:
        connections.close_all()  # this thread's only
