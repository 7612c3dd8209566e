"""Partner portal URLs, mounted at /portal/."""

from django.urls import path

from billing.portal import rebilling_views, views

app_name = "portal"

urlpatterns = [
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", views.PortalLogoutView.as_view(), name="logout"),
    path("password/reset/", views.PortalPasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PortalPasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views.PortalPasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password/reset/done/", views.PortalPasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("", views.dashboard, name="dashboard"),
    path("billing/", views.billing, name="billing"),
    path("billing/invoices/<int:pk>/pdf/", views.invoice_pdf_download, name="invoice_pdf"),
    path("billing/invoices/<int:pk>/xlsx/", views.invoice_xlsx_download, name="invoice_xlsx"),
    path("billing/statements/", views.statements, name="statements"),
    path("billing/statements/<str:period>/export.csv", views.statements_csv, name="statements_csv"),
    path("prices/", rebilling_views.price_lists, name="price_lists"),
    path("prices/cancel/", rebilling_views.resale_price_cancel_view, name="resale_price_cancel"),
    path("prices/items/", rebilling_views.resale_item_add, name="resale_item_add"),
    path("customer-invoices/", rebilling_views.customer_invoices, name="customer_invoices"),
    path("customer-invoices/<int:pk>/pdf/", rebilling_views.customer_invoice_pdf, name="customer_invoice_pdf"),
    path("customer-invoices/<int:pk>/xlsx/", rebilling_views.customer_invoice_xlsx_download,
         name="customer_invoice_xlsx"),
    path("customer-invoices/<int:pk>/issue/", rebilling_views.customer_invoice_issue, name="customer_invoice_issue"),
    path("customer-invoices/<int:pk>/credit/", rebilling_views.customer_invoice_credit,
         name="customer_invoice_credit"),
    path("rebilling/", rebilling_views.rebilling_settings, name="rebilling_settings"),
    path("margins/", rebilling_views.margins, name="margins"),
    path("margins/<str:span>.csv", rebilling_views.margins_csv, name="margins_csv"),
    path("customers/", views.customers, name="customers"),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
    path("customers/<int:pk>/seats/assign/", views.seat_assign_view, name="seat_assign"),
    path("customers/<int:pk>/seats/remove/", views.seat_remove_view, name="seat_remove"),
    path("customers/<int:pk>/cap/", views.seat_cap_view, name="seat_cap"),
    path("customers/<int:pk>/account/", rebilling_views.customer_account, name="customer_account"),
    path("customers/<int:pk>/account/payments/", rebilling_views.customer_payment_add, name="customer_payment_add"),
    path("customers/<int:pk>/account/payments/<int:payment_pk>/void/", rebilling_views.customer_payment_void_view,
         name="customer_payment_void"),
    path("customers/<int:pk>/account/billing-details/", rebilling_views.customer_billing_details,
         name="customer_billing_details"),
    path("seats/add/", views.add_seats, name="add_seats"),
    path("seats/purchases/<int:pk>/", views.seat_purchase, name="seat_purchase"),
    path("team/", views.team, name="team"),
    path("team/members/<int:pk>/reset/", views.member_access_reset, name="member_access_reset"),
    path("team/keys/create/", views.api_key_create_view, name="api_key_create"),
    path("team/keys/<int:pk>/", views.api_key_created, name="api_key_created"),
    path("team/keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
