"""Named SQL parameters (billing/core/sql.py): a name is bound once, an IN list is numbered, and a statement
using a name several times runs with each value given once."""

import pytest
from django.db import connection

from billing.core.sql import Params


def test_a_name_is_bound_once_and_an_in_list_is_numbered():
    p = Params()
    assert p.ref("first", 1) == "%(first)s"
    assert p.ref("first", 1) == "%(first)s"  # the same value again: the same placeholder
    with pytest.raises(ValueError, match="bound to 1 and to 2"):
        p.ref("first", 2)
    assert p.each("sid", [7, 8]) == "%(sid_0)s, %(sid_1)s"
    assert p == {"first": 1, "sid_0": 7, "sid_1": 8}


@pytest.mark.django_db
def test_a_statement_uses_a_name_several_times():
    p = Params()
    sql = f"SELECT {p.ref('a', 2)} * {p.ref('a', 2)} + {p.ref('b', 1)}, 3 IN ({p.each('x', [1, 2, 3])})"
    with connection.cursor() as cursor:
        cursor.execute(sql, p)
        assert tuple(cursor.fetchone()) in ((5, True), (5, 1))
