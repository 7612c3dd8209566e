"""Named parameters for the hand-written SQL of the meters (`%(first)s`, not a list in the order of the
`%s`s): each value is given once by name, whatever order and however many times the fragments of a
statement use it. Django passes a dict of parameters through on SQLite and PostgreSQL alike."""

from __future__ import annotations


class Params(dict):
    """The parameters of one statement, filled in as its fragments are written."""

    def ref(self, name: str, value) -> str:
        """The placeholder of `name`, bound to `value` (a name is bound once: a second value is a bug)."""
        if name in self and self[name] != value:
            raise ValueError(f"SQL parameter {name!r} bound to {self[name]!r} and to {value!r}")
        self[name] = value
        return f"%({name})s"

    def each(self, name: str, values) -> str:
        """Placeholders for an IN list: `%(name_0)s, %(name_1)s, ...`."""
        return ", ".join(self.ref(f"{name}_{i}", value) for i, value in enumerate(values))
