"""Secrets the product must send again (RMM API tokens), kept encrypted in the database.

A database dump or backup then holds no usable token. Encryption is Fernet from `cryptography`
(AES-128-CBC with an HMAC-SHA256, a fresh IV each time), behind `MultiFernet` so that keys rotate:
`FIELD_ENCRYPTION_KEYS` lists Fernet keys, the first encrypts and every one decrypts. Without it the
key is derived from SECRET_KEY (then rotating SECRET_KEY needs the old one listed: operations 14).

`SealedTextField` keeps the plain text on the model and the sealed text in the column. A value no
listed key opens (the key was changed) loads as `Unreadable`: the page still shows, a save keeps
the stored text as it is, and whoever needs the plain text gets a clear error.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"  # what a sealed value starts with in the column
NO_KEY_OPENS = ("cannot be decrypted with the keys in FIELD_ENCRYPTION_KEYS (was the key or SECRET_KEY changed? "
                "list the old key after the new one)")


class SealedValueError(Exception):
    """A stored secret none of the configured keys opens."""


class Unreadable(str):
    """The stored text of a secret no configured key opens: non-empty, never the secret."""


def _derived_key(secret_key: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(f"billing.sealed:{secret_key}".encode()).digest())


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys] or [Fernet(_derived_key(secret_key))])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: each key must be a Fernet key "
                                   f"(python -c 'from cryptography.fernet import Fernet; "
                                   f"print(Fernet.generate_key().decode())'): {exc}") from None


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def seal(plain: str) -> str:
    """The text to store for a secret ("" stays "")."""
    if not plain:
        return ""
    return PREFIX + _current().encrypt(plain.encode()).decode("ascii")


def unseal(stored: str) -> str:
    """The secret a stored text holds ("" stays ""); SealedValueError if no configured key opens it."""
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise SealedValueError("the stored secret is not sealed (written before encryption, or by hand)")
    try:
        return _current().decrypt(stored[len(PREFIX):].encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SealedValueError(f"the stored secret {NO_KEY_OPENS}") from exc


class SealedTextField(models.TextField):
    """Plain text on the model, sealed text in the database. Not for lookups: each sealing differs."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return unseal(value)
        except SealedValueError:
            return Unreadable(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, Unreadable):
            return str(value)  # kept as stored: a later key may open it
        return seal(value) if value else value
