"""The one reader of the environment (django-environ)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local `.env` is read when present; the real environment wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
