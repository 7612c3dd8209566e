"""Invoice PDFs: Django templates rendered by WeasyPrint.

The document is self-contained: the CSS is inlined and the fonts come from the operating system, so
no URL is fetched while rendering. DejaVu Sans draws Latin, Greek, Cyrillic, Arabic and Hebrew; the
Noto fonts draw what it cannot (CJK and Hangul, Thai, Devanagari and other scripts, emoji), so a
name in any script prints as itself, not as boxes (invoice.css; the packages are in docs/operations.md).
WeasyPrint embeds only the glyphs a document uses: a Latin-only PDF embeds DejaVu Sans alone.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from invoicing.selectors import invoice_document

TEMPLATE = "invoicing/invoice.html"


def render_invoice_html(invoice) -> str:
    return render_to_string(TEMPLATE, invoice_document(invoice))


def render_invoice_pdf(invoice) -> bytes:
    """The PDF of a CI, INV or credit note, as the partner receives it (A4, "Page N of M")."""
    # imported here: WeasyPrint needs Pango, which only rendering requires (the admin and API start without it)
    from weasyprint import HTML  # noqa: PLC0415

    html = HTML(string=render_invoice_html(invoice), base_url=str(settings.BASE_DIR))
    return html.write_pdf()


def invoice_pdf_content(invoice) -> bytes:
    """The PDF a download gives: the stored file when there is one (the one emailed or regenerated),
    else rendered now. Raises ImportError or OSError when WeasyPrint cannot render here."""
    if invoice.pdf:
        try:
            with invoice.pdf.open("rb") as stored:
                return stored.read()
        except OSError:
            pass  # the stored file is gone: render it again
    return render_invoice_pdf(invoice)
