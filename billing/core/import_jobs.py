"""The admin's Import button (import-formats 1): an uploaded file is stored as it streams in,
checked by the import engine (a dry run: counts, the first rows, every `row N: column: reason`), then imported
by the same engine once a clerk confirms, all or nothing, exactly as `import_csv` would.

A file of up to IMPORT_INLINE_MAX_BYTES is checked and imported in the request. A larger one runs in the
background (IMPORT_JOBS_RUN: a Celery task, or a thread of the web process where no broker is set up) while
its page shows how far it is, so no request holds a web worker for more than a few seconds, and memory is the
engine's bound (a batch of rows), never the file's size.

Each stage claims its job with a conditional update (queued → checking, checked → confirmed → importing), so a
second click on Confirm, or a task delivered twice, never imports a file twice.
"""

from __future__ import annotations

import csv
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.utils import timezone
from openpyxl import load_workbook  # only for workbooks (openpyxl comes with django-import-export[xlsx])

from billing.core.actor import Actor
from billing.core.importing import (
    CELL_FAULT,
    ImportFileError,
    ImportSummary,
    open_csv,
    read_csv,
    run_import_file,
)
from billing.core.models import ImportJob
from billing.core.registry import import_kinds

logger = logging.getLogger(__name__)
Status = ImportJob.Status
PREVIEW_ROWS = 10
XLSX_MAGIC = b"PK\x03\x04"


# --- the upload --------------------------------------------------------------------------------------------
def import_job_create(*, kind: str, upload, user) -> ImportJob:
    """A job for an uploaded file (a Django UploadedFile), stored by chunks: never held whole in memory."""
    if kind not in import_kinds():
        raise ImportFileError(f"unknown import kind {kind!r}")
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ImportFileError(f"the file is {upload.size:,} bytes; the most the admin takes is "
                              f"{settings.IMPORT_MAX_UPLOAD_BYTES:,} (use import_csv for larger files)")
    folder = Path(settings.IMPORT_JOBS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    import_jobs_purge()
    path = folder / f"{uuid.uuid4().hex}.upload"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return ImportJob.objects.create(kind=kind, file_name=Path(upload.name or "upload").name[:255], path=str(path),
                                    size=path.stat().st_size, requested_by=user)


def import_job_start(job: ImportJob) -> None:
    """Run the job's next stage: in this request for a small file, else in the background."""
    mode = settings.IMPORT_JOBS_RUN
    if mode == "inline" or job.size <= settings.IMPORT_INLINE_MAX_BYTES:
        import_job_run(job.pk)
    elif mode == "celery":
        transaction.on_commit(lambda: _enqueue(job))
    else:  # "thread": the embedded set-up, with no broker and no worker
        transaction.on_commit(lambda: threading.Thread(target=_run_in_thread, args=(job.pk,), daemon=True).start())


UNQUEUED = ("the background worker could not be reached (the task queue is down): nothing was imported; try again "
            "in a few minutes, or tell the administrator")


def _enqueue(job: ImportJob) -> None:
    """The job's stage as a Celery task. The broker unreachable: a check that cannot start fails with the reason;
    an import that cannot start goes back to checked, so Confirm can be pressed again later."""
    try:
        run_import_job_task.delay(job.pk)
    except Exception:  # kombu's OperationalError, or any fault of the publish: the clerk is told, not a 500
        logger.exception("import job %s: the task could not be queued", job.pk)
        if not ImportJob.objects.filter(pk=job.pk, status=Status.CONFIRMED).update(status=Status.CHECKED,
                                                                                  fault=UNQUEUED):
            ImportJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
                status=Status.FAILED, fault=UNQUEUED, finished_at=timezone.now())
        job.refresh_from_db()


def _run_in_thread(job_id: int) -> None:
    close_old_connections()
    try:
        import_job_run(job_id)
    finally:
        close_old_connections()


@shared_task(name="billing.run_import_job")
def run_import_job_task(job_id: int) -> str:
    return import_job_run(job_id)


# --- the stages --------------------------------------------------------------------------------------------
def import_job_confirm(job: ImportJob, *, user) -> bool:
    """Confirm a checked job (once: a second confirm finds it confirmed already and changes nothing)."""
    claimed = ImportJob.objects.filter(pk=job.pk, status=Status.CHECKED).update(
        status=Status.CONFIRMED, confirmed_by=user, fault="")
    job.refresh_from_db()
    return bool(claimed)


def import_job_discard(job: ImportJob) -> bool:
    """Drop a checked job that will not be imported (its stored file goes)."""
    discarded = ImportJob.objects.filter(pk=job.pk, status=Status.CHECKED).update(
        status=Status.DISCARDED, finished_at=timezone.now())
    job.refresh_from_db()
    if discarded:
        _remove_file(job)
    return bool(discarded)


def import_job_run(job_id: int) -> str:
    """Run the stage the job waits for: the check of a queued job, the import of a confirmed one."""
    stages = {Status.QUEUED: (Status.CHECKING, True), Status.CONFIRMED: (Status.IMPORTING, False)}
    job = ImportJob.objects.get(pk=job_id)
    if job.status not in stages:
        return job.status  # run already (a task delivered twice)
    running, dry_run = stages[job.status]
    if not ImportJob.objects.filter(pk=job.pk, status=job.status).update(status=running):
        return "claimed by another run"
    job.status = running
    _set_progress(job, 0, 0)
    try:
        path = _csv_path(job)
        # the share read is of the file the engine reads: a workbook's CSV, not the zipped workbook uploaded
        _set_progress(job, size=path.stat().st_size)
        summary = run_import_file(
            job.kind, path, dry_run=dry_run,
            actor=Actor.of_user(job.confirmed_by or job.requested_by,
                                label=f"admin import by {job.confirmed_by or job.requested_by}"),
            source=job.file_name, on_progress=lambda rows, read: _set_progress(job, rows, read),
            on_step=lambda step: _set_progress(job, step=step),
        )
    except ImportFileError as exc:
        _finish(job, Status.REFUSED, fault=str(exc))
    except Exception:  # the engine wrote nothing (one transaction); the clerk sees that it failed
        logger.exception("import job %s failed", job.pk)
        _finish(job, Status.FAILED, fault="the import stopped on an unexpected error; nothing was imported "
                                          "(the error is in the server's log)")
    else:
        if not summary.ok:
            _finish(job, Status.REFUSED, summary=summary)
        elif dry_run:
            _finish(job, Status.CHECKED, summary=summary)
        else:
            _finish(job, Status.IMPORTED, summary=summary)
    cache.delete(_progress_key(job.pk))
    return job.status


def _finish(job: ImportJob, status: str, *, summary: ImportSummary | None = None, fault: str = "") -> None:
    job.status, job.fault = status, fault
    now = timezone.now()
    if status in (Status.CHECKED, Status.REFUSED) and job.checked_at is None:
        job.checked_at = now
    if status != Status.CHECKED:
        job.finished_at = now
    if summary is not None:
        job.read_as, job.rows = summary.read_as, summary.rows
        job.created, job.updated, job.unchanged = summary.created, summary.updated, summary.unchanged
        job.bad_rows, job.error_count, job.warning_count = summary.bad_rows, summary.error_count, summary.warning_count
        job.errors = [[e.row, e.column, e.reason] for e in summary.errors]
        job.warnings = [[w.row, w.column, w.reason] for w in summary.warnings]
    job.save()
    if status != Status.CHECKED:
        _remove_file(job)


# --- the stored file ---------------------------------------------------------------------------------------
def _csv_path(job: ImportJob) -> Path:
    """The stored file as CSV: an Excel workbook (.xlsx) is written out as CSV first, a row at a time."""
    path = Path(job.path)
    converted = path.with_suffix(".csv")
    if converted.exists():
        return converted
    with path.open("rb") as head:
        is_workbook = head.read(4) == XLSX_MAGIC
    if not is_workbook or not job.file_name.lower().endswith((".xlsx", ".xlsm")):
        return path  # a ZIP that is not a workbook is refused by the CSV reader, with its reason
    _xlsx_to_csv(path, converted)
    return converted


def _xlsx_to_csv(source: Path, target: Path) -> None:
    """The workbook's first sheet as the CSV Excel would save of it (import-formats 1): each cell as Excel shows
    it (`_cell_text`). The workbook is read twice, side by side and a row at a time: for the values Excel saved,
    and for the formulas, so that a formula never calculated (a workbook written by a program) is told from a
    blank cell."""
    books = []
    try:
        for data_only in (True, False):
            stream = source.open("rb")  # a file object: openpyxl judges a path by its suffix
            try:
                books.append(load_workbook(stream, read_only=True, data_only=data_only))
            except Exception as exc:  # a broken workbook: one line for the clerk
                stream.close()
                raise ImportFileError(f"the workbook cannot be read ({exc}): save it again, or as CSV UTF-8") from None
        values, formulas = (book.worksheets[0].iter_rows() for book in books)
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            for row, formula_row in zip(values, formulas, strict=False):
                writer.writerow([_cell_text(cell, formula) for cell, formula in zip(row, formula_row, strict=False)])
    finally:
        for book in books:
            book.close()


FORMULA_NOT_CALCULATED = ("a formula with no calculated value ({formula}): the workbook was written by a program "
                          "and never opened in Excel; open it in Excel and save it, or save it as CSV UTF-8")


def _cell_text(cell, formula=None) -> str:
    """A workbook cell as the text a CSV export of it would hold: Excel's 15 significant digits (22.999999999999996
    is 23), a percentage as its number (10% is 10, as a tax rate is written), dates as YYYY-MM-DD. A cell with
    nothing to import (an error value such as #N/A, a formula never calculated) is a CELL_FAULT, refused on its
    row and column."""
    value = getattr(cell, "value", None)
    if value is None:
        text = getattr(formula, "value", None)
        if isinstance(text, str) and text.startswith("="):
            return CELL_FAULT + FORMULA_NOT_CALCULATED.format(formula=text[:60])
        return ""
    if getattr(cell, "data_type", None) == "e":
        return CELL_FAULT + f"the workbook shows the error {value} in this cell: correct it in the workbook"
    if isinstance(value, datetime):
        if value.time() == datetime.min.time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, bool):
        return str(value).upper()  # TRUE / FALSE, as Excel writes them
    if isinstance(value, (int, float)):
        # Excel keeps and shows 15 significant digits of a float; a whole number read as int is exact
        number = Decimal(value) if isinstance(value, int) else Decimal(format(value, ".15g"))
        if "%" in (getattr(cell, "number_format", "") or ""):
            number *= 100  # a cell formatted as a percentage holds 0.1 for 10%
        return _plain(number)
    return str(value)


def _plain(number: Decimal) -> str:
    """A Decimal without exponent nor trailing zeros: 1E+16 is 10000000000000000, 2.50 is 2.5, 10.0 is 10."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _remove_file(job: ImportJob) -> None:
    for path in (Path(job.path), Path(job.path).with_suffix(".csv")):
        path.unlink(missing_ok=True)


# a stage that has reported nothing for this long died with its process (a worker killed, a deploy, a web thread
# recycled): a running import reports every batch, and even a fast path's longest step takes minutes
STALE_AFTER = timedelta(hours=2)
ABANDONED = ("the process running it ended before it finished (a restart or a deploy); nothing was imported: "
             "upload the file again")


def import_job_abandoned(job: ImportJob, *, now=None) -> bool:
    """Mark the job failed if its stage is checking or importing and has reported nothing for STALE_AFTER: its
    transaction rolled back with its process, so nothing was written (operations 13). The update is conditional:
    a run still alive that finishes later records what it did."""
    if job.status not in (Status.CHECKING, Status.IMPORTING):
        return False
    now = now or timezone.now()
    seen = cache.get(_progress_key(job.pk)) or {}
    last = seen.get("updated") or seen.get("started")
    since = datetime.fromtimestamp(last, tz=UTC) if last else (job.checked_at or job.created_at)
    if now - since < STALE_AFTER:
        return False
    if not ImportJob.objects.filter(pk=job.pk, status=job.status).update(
            status=Status.FAILED, fault=ABANDONED, finished_at=now):
        job.refresh_from_db()
        return False
    job.refresh_from_db()
    cache.delete(_progress_key(job.pk))
    _remove_file(job)
    logger.warning("import job %s abandoned: no progress since %s", job.pk, since)
    return True


def import_jobs_purge() -> int:
    """Files of jobs checked but never confirmed or discarded, kept IMPORT_JOBS_KEEP_HOURS: dropped."""
    cutoff = timezone.now() - timedelta(hours=settings.IMPORT_JOBS_KEEP_HOURS)
    for job in ImportJob.objects.filter(status__in=(Status.CHECKING, Status.IMPORTING)):
        import_job_abandoned(job)
    stale = list(ImportJob.objects.filter(status=Status.CHECKED, created_at__lt=cutoff))
    for job in stale:
        if import_job_discard(job):
            logger.info("import job %s discarded after %s hours", job.pk, settings.IMPORT_JOBS_KEEP_HOURS)
    return len(stale)


# --- what the job's page shows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    rows: int
    bytes_read: int
    size: int
    seconds: float
    step: str = ""  # what a fast path does once the file is read ("checking the seat rules")

    @property
    def percent(self) -> int | None:
        return min(99, self.bytes_read * 100 // self.size) if self.size and self.bytes_read else None

    @property
    def seconds_left(self) -> int | None:
        if not self.bytes_read or self.seconds < 1 or self.step:  # an estimate of the reading only
            return None
        return max(0, round(self.seconds * (self.size - self.bytes_read) / self.bytes_read))


def _progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


def _set_progress(job: ImportJob, rows: int | None = None, bytes_read: int | None = None, *,
                  step: str | None = None, size: int | None = None) -> None:
    """The counts (rows, bytes read), the step a run reports, or the size of the file it reads; what it does not
    report stays as it was."""
    seen = cache.get(_progress_key(job.pk)) or {}
    cache.set(_progress_key(job.pk), {
        "rows": seen.get("rows", 0) if rows is None else rows,
        "bytes": seen.get("bytes", 0) if bytes_read is None else bytes_read,
        "size": seen.get("size") if size is None else size,
        "step": seen.get("step", "") if step is None else step,
        "started": seen.get("started") or timezone.now().timestamp(),
        "updated": timezone.now().timestamp(),  # for import_job_abandoned
    }, timeout=86400)


def import_job_progress(job: ImportJob) -> Progress | None:
    """How far a running stage is (rows read, bytes of the file read), from the cache the run writes to."""
    seen = cache.get(_progress_key(job.pk))
    if not seen:
        return None
    return Progress(rows=seen["rows"], bytes_read=seen["bytes"], size=seen.get("size") or job.size,
                    seconds=timezone.now().timestamp() - seen["started"], step=seen.get("step", ""))


def import_job_preview(job: ImportJob) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the first rows of the stored file, as the engine reads them (row numbers included)."""
    path = Path(job.path)
    if not path.exists():
        return [], []
    csv_path = path.with_suffix(".csv") if path.with_suffix(".csv").exists() else path
    try:
        with open_csv(csv_path) as stream:
            header, rows = read_csv(stream)
            shown = []
            for number, cells in rows:
                if "__too_many__" in cells:
                    continue
                shown.append((number, [cells.get(column, "") for column in header]))
                if len(shown) == PREVIEW_ROWS:
                    break
            return header, shown
    except ImportFileError:
        return [], []
