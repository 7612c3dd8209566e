"""The kernel's own records: one-time tokens of money writes and the admin's import jobs (no app's data)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """A write done once for a one-time token (a money form's hidden token, an API's Idempotency-Key header):
    a repeated POST with the same token gets the first answer back and writes nothing (billing/idempotency.py).
    `scope` keeps tokens of different users, API keys and endpoints apart."""

    scope = models.CharField(max_length=200)
    token = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField(default=0)
    location = models.CharField(max_length=500, blank=True)  # a redirect's target
    body = models.TextField(blank=True)  # an API answer's JSON
    request_digest = models.CharField(max_length=64, blank=True)  # SHA-256 of the request: a token reused for
    # another request is refused
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "partners_idempotentrequest"  # made by the partners app, before the kernel had models
        constraints = [models.UniqueConstraint(fields=["scope", "token"], name="idempotent_once")]

    def __str__(self):
        return f"{self.scope} {self.token}"


class ImportJob(models.Model):
    """A file uploaded with the admin's Import button (billing/import_jobs.py): checked (a dry run) then, once
    confirmed, imported by the same engine as `import_csv`, in the request for a small file and as a background
    task for a large one. Each status change is a conditional update, so a job runs each stage once."""

    class Status(models.TextChoices):
        QUEUED = "queued", "waiting to be checked"
        CHECKING = "checking", "checking"
        CHECKED = "checked", "checked: ready to import"
        REFUSED = "refused", "refused: nothing imported"
        CONFIRMED = "confirmed", "waiting to be imported"
        IMPORTING = "importing", "importing"
        IMPORTED = "imported", "imported"
        FAILED = "failed", "failed: nothing imported"
        DISCARDED = "discarded", "discarded"

    RUNNING = (Status.QUEUED, Status.CHECKING, Status.CONFIRMED, Status.IMPORTING)

    kind = models.CharField(max_length=40)
    file_name = models.CharField(max_length=255)
    path = models.CharField(max_length=500, blank=True)  # the stored upload, removed when the job ends
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # what the engine answered (ImportSummary) at the last stage that ran
    read_as = models.CharField(max_length=100, blank=True)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    bad_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [[row, column, reason], ...] (the first reported)
    warning_count = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(default=list, blank=True)
    fault = models.TextField(blank=True)  # a fault of the whole file, or why the job failed

    class Meta:
        db_table = "partners_importjob"  # made by the partners app, before the kernel had models
        ordering = ("-created_at",)

    def __str__(self):
        return f"{self.kind} import of {self.file_name}"
