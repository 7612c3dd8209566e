"""The billing clerk's screens for partners, customers, services and seats, one module per area:

- `kit`: the admin kit every app's admin builds on (actors, admin URLs, audited saves, read-only
  history, add pages whose write is one service call, the customer filter, per-page columns);
- `terms`: terms that change from a date and their history (billing-rules 3.11), shared by the
  partner, customer and service pages;
- `partners`, `customers`, `services`: their lists and pages;
- `seats`: seat assignments, seat purchases, members and utilization alerts;
- `access`: partner users (portal logins) and API keys;
- `audit`: the audit log.

Every change of seats or money goes through partners.services (seat_assign,
seat_unassign, seat_purchase_create), which lock, check the rules and audit.
So do edits of partners, customers and services (partner_create,
partner_update, partner_delete, and the same of customer_ and service_),
which check the rules the imports check, write the audit rows the imports
and the portal write (one snapshot per model, partners.audit) and date
changed terms. History (seat assignments, seat purchases, alerts, the audit
log, members) is read-only here: it changes only through those services and
the imports.

Lists never run a query per row: counts are subquery annotations, and the
commitments and utilization of a page are read in a few grouped queries for
the whole page (see PageStatsChangeList).

Django's admin.autodiscover() imports this package: importing the area modules registers their admins.
"""

from partners.admin import access, audit, customers, partners, seats, services

__all__ = ["access", "audit", "customers", "partners", "seats", "services"]
