from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.api import api
from billing.two_factor import two_factor

admin.site.site_header = "MSP billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Partners, usage and invoices"
# the lists need the width at 1440 px (the sidebar hid their last columns): the app list is one click away, Home
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/two-factor/", two_factor, name="admin_two_factor"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("portal/", include("billing.portal.urls")),
]
