"""Writes of invoicing (billing-rules 4, 6, 8.2), one module per responsibility:

- `numbering`: gapless invoice numbers (`number_take`, `numbers_take`);
- `run`: the billing run (`billing_run`, its one entry point), the documents it drafts and writes (`LineRow`),
  and the true-ups wired in;
- `runs`: billing runs recorded as they went (`billing_run_recorded`: the admin's billing page, `run_billing`
  and the daily task);
- `ledger`: issuing, the statement on a CI, payment statuses, payments and credit notes;
- `delivery`: the emails and PDFs of issued documents;
- `errors`: `BillingError`, which every service raises for a request it refuses.

Every public name is importable from here, as callers always have (`from invoicing.services import
billing_run`), the reads the services use from `invoicing.selectors` included. A test that replaces a name a
service looks up patches it in the module that looks it up (`invoicing.services.run.rate_partners_month`)."""

from invoicing.selectors import (
    billed_units,
    billed_units_by_partner,
    money_total,
    partner_balance,
    unsent_invoices,
)
from invoicing.services.delivery import invoice_email_send, invoice_emails_enqueue, invoice_pdf_store
from invoicing.services.errors import BillingError
from invoicing.services.ledger import (
    credit_note_issue,
    invoice_issue_draft,
    invoice_status,
    invoice_status_refresh,
    invoice_statuses_refresh,
    payment_record,
    payment_refusals,
    status_from,
)
from invoicing.services.numbering import GATE, number_take, numbers_take
from invoicing.services.run import LINE_COLUMNS, LineRow, billing_run, fact_changes
from invoicing.services.runs import billing_run_recorded

__all__ = [
    "GATE",
    "LINE_COLUMNS",
    "BillingError",
    "LineRow",
    "billed_units",
    "billed_units_by_partner",
    "billing_run",
    "billing_run_recorded",
    "credit_note_issue",
    "fact_changes",
    "invoice_email_send",
    "invoice_emails_enqueue",
    "invoice_issue_draft",
    "invoice_pdf_store",
    "invoice_status",
    "invoice_status_refresh",
    "invoice_statuses_refresh",
    "money_total",
    "number_take",
    "numbers_take",
    "partner_balance",
    "payment_record",
    "payment_refusals",
    "status_from",
    "unsent_invoices",
]
