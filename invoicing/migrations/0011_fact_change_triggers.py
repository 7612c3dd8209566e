"""PostgreSQL triggers that log, per partner, the earliest day a write covers on the tables the true-up methods
read (billing-rules 4.11; invoicing.models.FactChange). Statement-level with transition tables on the large
tables (one row per partner a statement touched, COPY included); row-level on services and customers, whose
updates are few and of which only some columns matter. SQLite has none: a run there measures every month."""

from django.db import migrations

FAR_PAST = "DATE '0001-01-01'"  # a write that may change every month (a customer's organization, a service)

# table: (the partner of a row r, the earliest day a row r covers, a join to reach the partner)
STATEMENT_TABLES = {
    "partners_seatassignment": ("r.partner_id", "LEAST(r.start_date, r.end_date)", ""),
    "metering_agentpresence": ("r.partner_id", "LEAST(r.present_from, r.present_until)", ""),
    "metering_usagesnapshot": ("c.partner_id", "r.date", "JOIN partners_customer c ON c.id = r.customer_id"),
    "metering_suspension": ("c.partner_id", "LEAST(r.first_full_day, r.last_full_day)",
                            "JOIN partners_customer c ON c.id = r.customer_id"),
    "partners_seatpurchase": ("s.partner_id", "r.effective_date", "JOIN partners_service s ON s.id = r.service_id"),
    "partners_termsversion": ("r.partner_id", "r.valid_until", ""),
}
# table: (columns whose update matters, the earliest day)
ROW_TABLES = {
    "partners_service": ("unit_price, overage_price, committed_quantity, overage_enabled, storage_per_license_gb, "
                         "tiers, tier_mode, proration, start_date, end_date, customer_id, rmm_org, rmm_group, rmm_view",
                         FAR_PAST),
    "partners_customer": ("host_limit, rmm_organization, partner_id", FAR_PAST),
}


def _statement_sql(table, partner, day, join):
    function = f"fact_change_{table}"
    select = (f"SELECT {partner} AS partner_id, {day} AS day FROM {{rows}} r {join}")
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO invoicing_factchange (partner_id, day, changed_at)
        SELECT partner_id, MIN(COALESCE(day, {FAR_PAST})), now() FROM ({select.format(rows='new_rows')}) x
        GROUP BY partner_id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO invoicing_factchange (partner_id, day, changed_at)
        SELECT partner_id, MIN(COALESCE(day, {FAR_PAST})), now() FROM ({select.format(rows='old_rows')}) x
        GROUP BY partner_id;
    ELSE
        INSERT INTO invoicing_factchange (partner_id, day, changed_at)
        SELECT partner_id, MIN(COALESCE(day, {FAR_PAST})), now() FROM (
            {select.format(rows='new_rows')} UNION ALL {select.format(rows='old_rows')}) x
        GROUP BY partner_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {function}_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER {function}_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER {function}_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
"""


def _row_sql(table, columns, day):
    function = f"fact_change_{table}"
    partner = "partner_id" if table != "partners_customer" else "partner_id"
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO invoicing_factchange (partner_id, day, changed_at) VALUES (NEW.{partner}, {day}, now());
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO invoicing_factchange (partner_id, day, changed_at) VALUES (OLD.{partner}, {day}, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {function}_change AFTER INSERT OR DELETE OR UPDATE OF {columns} ON {table}
    FOR EACH ROW EXECUTE FUNCTION {function}();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (partner, day, join) in STATEMENT_TABLES.items():
        schema_editor.execute(_statement_sql(table, partner, day, join))
    for table, (columns, day) in ROW_TABLES.items():
        schema_editor.execute(_row_sql(table, columns, day))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in [*STATEMENT_TABLES, *ROW_TABLES]:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS fact_change_{table}() CASCADE")


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0010_fact_changes"),
        ("partners", "0013_terms_versions"),
        ("metering", "0011_integration_filter"),
    ]

    operations = [migrations.RunPython(create, drop)]
