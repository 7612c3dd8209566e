"""The price lists and own items (read-only in the admin) for both staff groups of partners' 0007_admin_groups:
a Billing clerk and an Auditor read them."""

from django.db import migrations

from billing.core.migration_ops import GroupGrants

VIEWS = [("rebilling", "view_resaleprice"), ("rebilling", "view_resaleitem")]
GRANTS = GroupGrants({"Billing clerk": VIEWS, "Auditor": VIEWS})
apply_to_groups = GRANTS.apply_to_groups  # the access tests apply every group migration's grants


class Migration(migrations.Migration):
    dependencies = [
        ("rebilling", "0001_initial"),
        ("partners", "0019_admin_groups_company_profile"),
    ]

    operations = [GRANTS.operation()]
