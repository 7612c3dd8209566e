"""Metering in the admin, one module per area (billing-rules 3.1, 3.4-3.7, 6.10):

- `usage`: tenants' usage snapshots and suspensions, with their Import buttons;
- `rmm`: RMM agents, their places and the inventories applied; the integrations, sync runs (with the
  review page of a held sync) and unit change notices; "Get units now" (MeteredServiceAdminMixin);
- `customers`: month-to-date seat-days beside each customer (the partners CustomerAdmin re-registered);
- `records`: usage records (calls, call legs, meetings), read-only lists that stay fast at millions of rows;
- `common`: what those pages share.

Usage history is read-only here. It changes only through the imports, whose Import buttons run
the same all-or-nothing engine as `import_csv` (rules checked, every change audited), and through
metering.services (inventories). So nothing on these pages can silently rewrite what was or will be
billed. The admin kit they build on is partners.admin.kit.

Django's admin.autodiscover() imports this package: importing the area modules registers their admins.
"""

from metering.admin import customers, records, rmm, usage

__all__ = ["customers", "records", "rmm", "usage"]
