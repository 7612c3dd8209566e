"""Invoicing in the admin, one module per area:

- `invoices`: the invoices, read-only, with the actions of the list and the tools of the page;
- `payments`: payments, recorded through payment_record and read-only afterwards;
- `charges`: one-time charges, edited until they are billed;
- `lines`: every invoice line, to find a charge across invoices;
- `runs`: the billing page: preview a billing run, run it, and the runs that went before;
- `services`: the partners ServiceAdmin re-registered with what a seat_days service's recent periods
  would bill, and metering's "Get units now";
- `common`: what those pages share (amounts, the payment status).

Invoices change only through invoicing.services (billing-rules 4.4: an issued invoice never changes), so
every invoice page is read-only; what a clerk does to an invoice is an action on the list or a tool on its
page. The admin kit these pages build on is partners.admin.kit.

Django's admin.autodiscover() imports this package: importing the area modules registers their admins.
"""

from invoicing.admin import charges, company, invoices, lines, partners, payments, runs, services

__all__ = ["charges", "company", "invoices", "lines", "partners", "payments", "runs", "services"]
