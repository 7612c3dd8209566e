"""Billing runs recorded (`BillingRun`): `billing_run_recorded` is `billing_run` as the admin's billing page,
`run_billing` and the daily task start it. It names the partners held for missing legal details up front
(billing-rules 4.13) and bills the others, lets a partner that fails alone fail alone (the run goes on with the
partners after it) and keeps what it wrote, who started it and which partners it did not bill and why."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import date

from django.utils import timezone

from billing.core.actor import Actor
from invoicing.choices import RunSource, RunStatus
from invoicing.models import BillingRun, Invoice
from invoicing.services.errors import BillingError
from invoicing.services.ledger import company_details_missing, partner_details_missing
from invoicing.services.run import billing_run
from partners.models import Partner

logger = logging.getLogger("invoicing.services")
SCOPE_NAMES_SHOWN = 5


def billing_run_recorded(*, through: date, source: RunSource, actor: Actor, partner_slug: str | None = None,
                         partner_ids: list[int] | None = None, draft: bool = False, batch_size: int | None = None,
                         reraise: tuple[type[Exception], ...] = (),
                         on_progress: Callable[[int, int], None] | None = None) -> BillingRun:
    """A billing run (`billing_run`: every partner, one by its slug, or the given ids in their order), recorded
    as it goes: the BillingRun row is written first (status running; outside a transaction it commits at once
    and shows while the run goes on) and finished with what the run wrote.

    Issuing, a partner without its billing address is held and the others are billed; without the company's
    legal details nothing is billed (billing-rules 4.13). A preview (`draft`) drafts every partner and names who
    would be held. A partner whose billing fails alone is recorded with the error and the partners after it
    are billed. An error of a type in `reraise` (a database outage the daily task retries) is recorded, then
    raised once the run is finished. An unknown slug raises BillingError and records nothing. `on_progress(done,
    total)`: partners billed of partners to bill, as `billing_run` reports them (`run_billing`'s progress)."""

    partners = _partners(partner_slug, partner_ids)
    run = BillingRun.objects.create(
        through=through, draft=draft, source=source, scope=_scope(partners, partner_slug, partner_ids),
        partner=partners[0] if partner_slug else None, actor_label=str(actor)[:200],
        started_by=actor.user if getattr(actor.user, "pk", None) else None,
    )
    refused = company_details_missing()
    lacking = {p.pk: partner_details_missing(p) for p in partners}
    run.held = [{"partner": "", "reason": f"invoices cannot be issued: {'; '.join(refused)}"}] if refused else []
    run.held += [{"partner": p.slug, "reason": reason} for p in partners for reason in lacking[p.pk]]
    failed: list[tuple[int, Exception]] = []
    documents: list[Invoice] = []
    billed = partners if draft else [] if refused else [p for p in partners if not lacking[p.pk]]
    try:
        if billed:
            documents = billing_run(through=through, partner_ids=[p.pk for p in billed], draft=draft, actor=actor,
                                    batch_size=batch_size, failed=failed, on_progress=on_progress)
    except Exception as exc:  # the run itself, not one partner: recorded, then raised
        _finish(run, documents, failures=[{"partner": "", "reason": _reason(exc)}], partners=partners)
        raise
    slugs = {p.pk: p.slug for p in partners}
    for partner_id, exc in failed:
        logger.error("billing partner %s through %s failed", slugs[partner_id], through, exc_info=exc)
    _finish(run, documents, failures=[{"partner": slugs[pk], "reason": _reason(exc)} for pk, exc in failed],
            partners=partners)
    transient = [exc for _, exc in failed if isinstance(exc, reraise)]
    if transient:
        raise transient[0]
    return run


def _partners(partner_slug: str | None, partner_ids: list[int] | None) -> list[Partner]:
    """The partners of the run, in billing_run's order: by slug, or the ids in the order given."""
    if partner_ids is not None:
        found = Partner.objects.in_bulk(partner_ids)
        return [found[pk] for pk in partner_ids if pk in found]
    partners = Partner.objects.order_by("slug")
    if partner_slug:
        partners = partners.filter(slug=partner_slug)
        if not partners.exists():
            raise BillingError(f"unknown partner {partner_slug!r}")
    return list(partners)


def _scope(partners: list[Partner], partner_slug: str | None, partner_ids: list[int] | None) -> str:
    if partner_slug:
        return f"partner {partner_slug}"
    if partner_ids is None or len(partners) == Partner.objects.count():
        return "all partners"
    names = ", ".join(p.slug for p in partners[:SCOPE_NAMES_SHOWN])
    more = ", ..." if len(partners) > SCOPE_NAMES_SHOWN else ""
    return f"{len(partners)} partner(s): {names}{more}"[:300]


def _reason(exc: Exception) -> str:
    """An error as one line: a refusal as it reads, anything else with its type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, BillingError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _finish(run: BillingRun, documents: list[Invoice], *, failures: list[dict], partners: list[Partner]) -> None:
    """What the run wrote, and its status: failed when no partner of it was billed (nothing is held or fails in
    a preview but its failures), partly failed when some were not."""
    run.documents = [{"id": d.pk, "number": d.number, "kind": d.kind, "partner": d.partner.slug} for d in documents]
    run.counts = dict(Counter(d.kind for d in documents))
    run.document_count = len(documents)
    run.failures = failures
    run.finished_at = timezone.now()
    problems = {entry["partner"] for entry in failures} | (set() if run.draft else {e["partner"] for e in run.held})
    if not problems:
        run.status = RunStatus.SUCCEEDED
    elif "" in problems or problems >= {p.slug for p in partners}:
        run.status = RunStatus.FAILED
    else:
        run.status = RunStatus.PARTLY_FAILED
    run.save()
