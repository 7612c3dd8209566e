from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "MSP billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Partners, usage and invoices"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
