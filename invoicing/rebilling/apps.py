from django.apps import AppConfig


class RebillingConfig(AppConfig):
    name = "invoicing.rebilling"
    label = "rebilling"
    verbose_name = "Rebilling"

    def ready(self):
        from billing.core.hooks import (
            register_after_partner_billed,
            register_document_followers,
            register_unsent_emails,
        )
        from billing.core.registry import register_document_pdf

        # register the imports (resale-prices, customer-payments) and the reports (with the sync-out shapes)
        from invoicing.rebilling import imports, reports, sync_formats  # noqa: F401
        from invoicing.rebilling.invoices import (
            customer_invoices_bill,
            customer_invoices_followed,
            customer_invoices_unsent_enqueue,
        )
        from invoicing.rebilling.pdf import customer_invoice_pdf_finder

        # the billing run issues the customer invoices after the partner's own documents (billing-rules 12.5)
        register_after_partner_billed(customer_invoices_bill)
        register_document_followers(customer_invoices_followed)  # run_billing's output, the admin's run page
        register_document_pdf(customer_invoice_pdf_finder)  # render_invoice NUMBER (billing-rules 8.4)
        register_unsent_emails(customer_invoices_unsent_enqueue)  # the daily job sends what never left (4.10)
