"""Who acts on the data: a logged-in user, or a named command, task or API key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user: object | None = None
    label: str = ""

    @classmethod
    def of_user(cls, user, label: str = "") -> Actor:
        authenticated = getattr(user, "is_authenticated", False)
        return cls(user=user if authenticated else None, label=label or str(user or ""))

    def __str__(self):
        return self.label or str(self.user or "system")
