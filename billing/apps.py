from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # after the admin's autodiscover (django.contrib.admin comes first in INSTALLED_APPS): every ModelAdmin
        # refuses lookups on secrets and impossible date parts (billing/admin_guard.py)
        from django.contrib import admin

        from billing.admin_guard import guard_admin_lookups

        guard_admin_lookups(admin.site)
        from billing import login_lock  # noqa: F401 (the audit of sign-in locks: a signal receiver)
