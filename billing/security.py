"""Content-Security-Policy for every page (django-csp), strict by default.

The policy in settings (CONTENT_SECURITY_POLICY) allows scripts, styles, images, fonts, forms and
fetches from this site only, no plugins, no framing, no inline script or style: that is what the
partner portal runs with (its styles live in billing/static/portal/portal.css).

Two staff-only areas add one thing each, by URL prefix, in CSP_RELAXED_STYLE_PREFIXES:
- the Django admin, whose list columns and panels in this project draw bars and badges with
  `style` attributes (format_html), and
- the API's interactive docs (/api/docs, Swagger UI), which set inline styles too.
Both get `style-src 'unsafe-inline'` and nothing else: inline *scripts* stay refused everywhere.
Inline styles cannot run code; what they could do (restyle a page around injected markup) needs an
HTML injection that autoescaping already stops.
"""

from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        prefixes = tuple(getattr(settings, "CSP_RELAXED_STYLE_PREFIXES", ()))
        if prefixes and request.path_info.startswith(prefixes):
            update = dict(parts.update or {})
            update["style-src"] = [*(update.get("style-src") or ()), SELF, UNSAFE_INLINE]
            parts.update = update
        return parts
