"""Querystring lookups the admin must refuse, on every registered ModelAdmin (Django's own and third parties'
included): Django allows any lookup on a model's own fields, so `?digest__startswith=ab` answered yes or no
about a stored secret, and `?issue_date__year=99999999999` reached the database and answered 500.

A refused lookup answers 400 (DisallowedModelAdminLookup), as Django does for a lookup it does not allow.
docs/security.md lists what is refused.
"""

from __future__ import annotations

from django.db.models.constants import LOOKUP_SEP

# fields that hold secrets or their digests: never filtered on, through any relation
SECRET_FIELDS = frozenset({"password", "digest", "api_token", "session_key", "session_data"})
# date parts a changelist may filter on, with the values they take (datetime's own bounds)
DATE_PARTS = {"year": (1, 9999), "iso_year": (1, 9999), "month": (1, 12), "day": (1, 31), "week": (1, 53),
              "week_day": (1, 7), "iso_week_day": (1, 7), "quarter": (1, 4), "hour": (0, 23), "minute": (0, 59),
              "second": (0, 59)}


def lookup_refused(lookup: str, value) -> bool:
    """Whether an admin changelist must refuse this querystring lookup."""
    parts = lookup.split(LOOKUP_SEP)
    if SECRET_FIELDS.intersection(parts):
        return True
    for name in parts:
        if name in DATE_PARTS:
            low, high = DATE_PARTS[name]
            values = value if isinstance(value, list | tuple) else [value]
            for item in values:
                text = str(item).strip()
                if not (text.isascii() and text.lstrip("-").isdigit()) or not low <= int(text) <= high:
                    return True
    return False


def guard_admin_lookups(site) -> None:
    """Wrap `lookup_allowed` of every ModelAdmin registered on `site` (run once the admin modules are loaded)."""
    for model_admin in site._registry.values():
        if getattr(model_admin, "_lookups_guarded", False):
            continue
        allowed = model_admin.lookup_allowed

        def guarded(lookup, value, request=None, _allowed=allowed):
            return not lookup_refused(lookup, value) and _allowed(lookup, value, request)

        model_admin.lookup_allowed = guarded
        model_admin._lookups_guarded = True
