"""The admin's Import button: the same engine as `import_csv`, through an import job (billing/core/import_jobs.py).

The upload page takes a CSV file (or an Excel workbook), stores it as it streams in and checks it; the job's
page shows the counts, the first rows and every `row N: column: reason`, and imports the file once the clerk
confirms. A large file is checked and imported in the background while the page shows its progress.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.core.import_jobs import (
    import_job_abandoned,
    import_job_confirm,
    import_job_create,
    import_job_discard,
    import_job_preview,
    import_job_progress,
    import_job_start,
)
from billing.core.importing import ImportFileError
from billing.core.models import ImportJob
from billing.core.registry import import_kinds


class ImportUploadForm(forms.Form):
    import_file = forms.FileField(
        label="File", help_text="CSV (UTF-8, comma-separated, with a header row) or an Excel workbook (.xlsx): "
                                "its first sheet is read.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx,.xlsm,text/csv"}))


class FileImportAdminMixin:
    """For an ImportExportModelAdmin: its Import button runs the import kind `import_kind` as an import job.
    Put it before ImportExportModelAdmin in the bases."""

    import_kind: str = ""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("import/<int:job_id>/", self.admin_site.admin_view(self.import_job_view),
                     name="{}_{}_import_job".format(*info)), *super().get_urls()]

    def import_action(self, request, **kwargs):
        """The upload page; a file sent is stored and checked (in this request when small)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = import_job_create(kind=self.import_kind, upload=form.cleaned_data["import_file"],
                                        user=request.user)
            except ImportFileError as exc:
                form.add_error("import_file", str(exc))
            else:
                import_job_start(job)
                return HttpResponseRedirect(self._job_url(job))
        kind = import_kinds()[self.import_kind]
        columns = list(kind.fields())
        recent = ImportJob.objects.filter(kind=self.import_kind)
        if not request.user.is_superuser:  # a clerk sees their own imports; a superuser anyone's (import-formats 1)
            recent = recent.filter(requested_by=request.user)
        recent = recent.select_related("requested_by")[:10]
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": f"Import {self.import_kind}",
            "form": form, "kind": self.import_kind, "columns": columns,
            "required": [c for c in columns if c in kind.required_columns],
            "recent": [(job, self._job_url(job)) for job in recent],
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/import_upload.html", context)

    def process_import(self, request, **kwargs):
        """import-export's second step: replaced by the job's Confirm button."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        raise Http404("confirm an import on its job's page")

    def import_job_view(self, request, job_id):
        """A job: its progress while it runs (the page refreshes itself), then the check's result with the
        first rows and Confirm, or the errors, or what was imported."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id, kind=self.import_kind)
        if job.requested_by_id != request.user.pk and not request.user.is_superuser:
            raise PermissionDenied  # a clerk's file is the clerk's
        if request.method == "POST":
            if "discard" in request.POST:
                if import_job_discard(job):
                    self.message_user(request, f"Discarded {job.file_name}: nothing was imported.", messages.INFO)
                    return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import"))
                # confirmed meanwhile (another tab), or discarded already: say what it is, on its own page
                said = ("was discarded already" if job.status == ImportJob.Status.DISCARDED
                        else f"was not discarded: it is {job.get_status_display()}")
                self.message_user(request, f"{job.file_name} {said}.", messages.WARNING)
                return HttpResponseRedirect(self._job_url(job))
            if import_job_confirm(job, user=request.user):  # a second click finds it confirmed: nothing twice
                import_job_start(job)
            return HttpResponseRedirect(self._job_url(job))
        import_job_abandoned(job)  # a stage whose process died is shown failed, not running for ever
        header, rows = import_job_preview(job) if job.status == ImportJob.Status.CHECKED else ([], [])
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": f"Import of {job.file_name}",
            "job": job, "running": job.status in ImportJob.RUNNING, "progress": import_job_progress(job),
            "preview_header": header, "preview_rows": rows, "errors": job.errors, "warnings": job.warnings,
            "upload_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import"),
            "list_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
        }
        return TemplateResponse(request, "admin/import_job.html", context)

    def _job_url(self, job):
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import_job", args=[job.pk])
