from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.api import api
from billing.two_factor import two_factor

admin.site.site_header = "MSP billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Partners, usage and invoices"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/two-factor/", two_factor, name="admin_two_factor"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("portal/", include("billing.portal.urls")),
]
