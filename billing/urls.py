from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from billing.api import api
from billing.two_factor import two_factor

admin.site.site_header = "MSP billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Partners, usage and invoices"
# the lists need the width at 1440 px (the sidebar hid their last columns): the app list is one click away, Home
admin.site.enable_nav_sidebar = False

@csrf_exempt
def api_not_found(request):
    return JsonResponse({"detail": "Not Found"}, status=404)


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/two-factor/", two_factor, name="admin_two_factor"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # any other path under /api/ (one the routes cannot match, a line break in a slug say) is the API's JSON 404,
    # not Django's HTML page, whatever the method (csrf_exempt: a DELETE has no form, it is not found, never 403)
    re_path(r"^api/", api_not_found),
    path("portal/", include("billing.portal.urls")),
]
