"""The billing page (Invoicing > Billing runs): preview a billing run (its drafts, the true-ups and prorations
they carry, and the partners that would be held or fail), run it, and read the runs that went before, whoever
started them (this page, `run_billing`, the daily task).

Previewing and running take `invoicing.run_billing` (the Billing clerk has it; an Auditor reads the runs). A
run is inline: the page answers when it is done (fine at the demo's size; the daily task bills a large book).
Both are one call of `billing_run_recorded`, once per form sent (a double click runs once), and answer with
the run's page."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.core.hooks import document_followers
from billing.core.idempotency import OnceField, once_per_form
from billing.core.periods import utc_date
from invoicing.admin.common import change_url, money_text
from invoicing.choices import LineType, RunSource, RunStatus
from invoicing.models import BillingRun
from invoicing.selectors import billing_run_invoices
from invoicing.services import BillingError, billing_run_recorded
from partners.admin.kit import EMPTY, ReadOnlyAdminMixin, actor_of
from partners.models import Partner

RUN_PERMISSION = "invoicing.run_billing"
# the lines a clerk checks before issuing: what changed since a month was invoiced, and part-months
NOTABLE_LINES = {LineType.TRUE_UP: "true-up", LineType.FIRST_MONTH: "first-month proration",
                 LineType.PRORATION: "proration"}
STATUS_COLOURS = {RunStatus.RUNNING: "#417690", RunStatus.SUCCEEDED: "#2e7d32",
                  RunStatus.PARTLY_FAILED: "#b36b00", RunStatus.FAILED: "#ba2121"}


class BillingStartForm(forms.Form):
    through = forms.DateField(widget=AdminDateWidget, help_text="everything due up to this day (UTC) is billed")
    partner = forms.ModelChoiceField(queryset=Partner.objects.order_by("slug"), required=False,
                                     empty_label="All partners")
    once_token = OnceField()  # sent twice (a double click), run once


def status_pill(run: BillingRun):
    style = ("display:inline-block;padding:1px 8px;border-radius:9px;font-size:11px;font-weight:600;"
             "white-space:nowrap;color:#fff;")
    return format_html('<span class="run-status" style="{}background:{}">{}</span>', style,
                       STATUS_COLOURS.get(run.status, "#767676"), run.get_status_display().lower())


def _counts_text(run: BillingRun) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(run.counts.items()))


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The runs, read-only; the form on the list previews or runs one (`start_view`), and a run's page shows
    what it wrote (`change_view`)."""

    change_list_template = "admin/invoicing/billingrun/change_list.html"
    list_display = ("run_shown", "started", "started_by_shown", "source", "through_shown", "scope", "status_shown",
                    "written_shown", "problems_shown")
    list_display_links = ("run_shown",)
    list_filter = ("draft", "status", "source")
    list_select_related = ("started_by",)
    search_fields = ("scope", "actor_label")
    search_help_text = "Partner slug, user, command or task."

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("start/", self.admin_site.admin_view(self.start_view), name="{}_{}_start".format(*info)),
                *super().get_urls()]

    def may_run(self, request) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    # the list, with the form on top
    def changelist_view(self, request, extra_context=None):
        extra = {"title": "Billing", "start_form": self._start_form(), "may_run": self.may_run(request),
                 "start_url": reverse("admin:invoicing_billingrun_start")}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @staticmethod
    def _start_form(data=None, initial=None) -> BillingStartForm:
        return BillingStartForm(data, initial={"through": utc_date(timezone.now()), **(initial or {})})

    @admin.display(description="run", ordering="-id")
    def run_shown(self, obj):
        return f"{'Preview' if obj.draft else 'Run'} #{obj.pk}"

    @admin.display(description="started (UTC)", ordering="started_at")
    def started(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>',
                           obj.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))

    @admin.display(description="through", ordering="through")
    def through_shown(self, obj):
        return obj.through.isoformat()

    @admin.display(description="started by")
    def started_by_shown(self, obj):
        return obj.started_by.get_username() if obj.started_by_id else (obj.actor_label or EMPTY)

    @admin.display(description="status", ordering="status")
    def status_shown(self, obj):
        return status_pill(obj)

    @admin.display(description="documents", ordering="document_count")
    def written_shown(self, obj):
        if not obj.document_count:
            return "0"
        verb = "drafted" if obj.draft else "issued"
        return format_html("<b>{}</b> {} <span class=\"quiet\">({})</span>", obj.document_count, verb,
                           _counts_text(obj))

    @admin.display(description="not billed")
    def problems_shown(self, obj):
        count = obj.problem_count
        if not count:
            return "0"
        return format_html('<b style="color:#ba2121">{}</b>', count)

    # preview or run
    def start_view(self, request):
        """POST from the form on the list (or "Run billing" on a preview's page): a preview (drafts) or a run
        that issues, once per form sent, answered with the run's page. GET shows the form alone."""
        if not self.may_run(request):
            raise PermissionDenied
        return once_per_form(request, "admin:billing-run", lambda: self._start(request))

    def _start(self, request):
        form = self._start_form(request.POST if request.method == "POST" else None)
        draft = "_preview" in request.POST
        if form.is_bound and form.is_valid() and not draft and form.cleaned_data["through"] > utc_date(timezone.now()):
            # a day not over yet cannot be billed: its usage is not measured (a preview may look ahead)
            form.add_error("through", "Invoices cannot be issued through a day after today (UTC); preview it "
                                      "instead, or run billing on that day.")
        if form.is_bound and form.is_valid():
            partner = form.cleaned_data["partner"]
            try:
                run = billing_run_recorded(through=form.cleaned_data["through"], draft=draft,
                                           partner_slug=partner.slug if partner else None,
                                           source=RunSource.ADMIN, actor=actor_of(request))
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_addition(request, run, f"{'Previewed' if draft else 'Ran'} billing through {run.through}")
                self._report(request, run)
                return HttpResponseRedirect(reverse("admin:invoicing_billingrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Preview or run billing",
                   "subtitle": None, "start_form": form, "start_url": request.path, "media": self.media + form.media}
        return TemplateResponse(request, "admin/invoicing/billingrun/start.html", context)

    def _report(self, request, run: BillingRun) -> None:
        verb = "drafted" if run.draft else "issued"
        message = f"{run}: {run.document_count} document(s) {verb}" if run.document_count else f"{run}: nothing to bill"
        if run.problem_count:
            what = "would not be billed" if run.draft else "not billed"
            self.message_user(request, f"{message}; {run.problem_count} {what} (see below).", messages.WARNING)
        else:
            self.message_user(request, f"{message}.", messages.SUCCESS)

    # a run's page
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("no such billing run")
        invoices = billing_run_invoices(run)
        groups: dict[int, dict] = {}
        notable: Counter = Counter()
        for invoice in invoices:
            lines = [{"line": line, "tag": NOTABLE_LINES.get(line.line_type, ""),
                      "amount": money_text(line.amount, invoice.currency)} for line in invoice.lines.all()]
            tags = Counter(row["tag"] for row in lines if row["tag"])
            notable.update(tags)
            group = groups.setdefault(invoice.partner_id, {"partner": invoice.partner, "documents": []})
            group["documents"].append({
                "invoice": invoice, "url": change_url(invoice), "lines": lines,
                "tags": sorted(tags.items()), "total": money_text(invoice.total, invoice.currency)})
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": str(run).capitalize(),
            "subtitle": None, "run": run, "status": status_pill(run), "groups": list(groups.values()),
            "counts": _counts_text(run), "notable": sorted(notable.items()),
            "followers": document_followers([invoice.pk for invoice in invoices]),
            "gone": len(run.documents) - len(invoices), "list_url": reverse("admin:invoicing_billingrun_changelist"),
            "may_run": self.may_run(request) and run.draft,
            "start_form": self._start_form(initial={"through": run.through, "partner": run.partner}),
            "start_url": reverse("admin:invoicing_billingrun_start"),
        }
        return TemplateResponse(request, "admin/invoicing/billingrun/run.html", context)
