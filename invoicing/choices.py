"""The invoicing app's choices (kinds of invoice, states, payment statuses, line types), in a module of their own
so that rating and the true-ups name them without the models."""

from django.db import models


class InvoiceKind(models.TextChoices):
    CI = "CI", "Consolidated invoice"
    INV = "INV", "Individual invoice"
    CN = "CN", "Credit note"


class InvoiceState(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"


class PaymentStatus(models.TextChoices):
    OPEN = "open", "Open"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    OVERDUE = "overdue", "Overdue"
    VOID = "void", "Void"


class LineType(models.TextChoices):
    USAGE = "usage"
    MINIMUM = "minimum"
    OVERAGE = "overage"
    RECURRING = "recurring"
    VARIABLE_USAGE = "variable_usage"
    PRORATION = "proration"
    FIRST_MONTH = "first_month"
    ONE_TIME = "one_time"
    TAX = "tax"
    CREDIT = "credit"
    TRUE_UP = "true_up"


class RunSource(models.TextChoices):
    """Who started a billing run (invoicing.models.BillingRun)."""

    ADMIN = "admin", "Admin (billing page)"
    COMMAND = "command", "run_billing command"
    TASK = "task", "Daily billing task"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTLY_FAILED = "partly_failed", "Partly failed"
    FAILED = "failed", "Failed"
