"""The kernel every app imports: money, periods, the import engine, reports, audit actors, sealed secrets, the
admin's import jobs and one-time tokens. It imports no app (tests/test_layers.py): apps register with it
(billing.core.registry) instead."""
