"""Rebilling: what a partner charges its own customers (docs/rebilling.md). A part of invoicing kept apart: it
reads partners, metering and invoicing, and nothing below it reads it (tests/test_layers.py)."""
