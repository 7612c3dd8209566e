from billing.core.import_jobs import run_import_job_task  # noqa: F401 (found by the worker's autodiscovery)
