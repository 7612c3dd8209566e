"""Hooks an earlier layer calls and a later one fills (docs/architecture.md, 1): the billing run (invoicing) tells
whoever registered that a partner's documents are issued, without importing them. Rebilling registers its
customer invoices here (invoicing.rebilling, billing-rules 12.5), so that the partner's run issues them in the
same transaction, after the partner's own documents.

A callback is registered once, in its app's `AppConfig.ready()`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

# callback(partner=Partner, documents=[Invoice, ...], through=date, actor=Actor) -> None
PartnerBilled = Callable[..., None]

_after_partner_billed: list[PartnerBilled] = []


def register_after_partner_billed(callback: PartnerBilled) -> PartnerBilled:
    """Call `callback` for each partner a billing run issued documents for (used as a decorator too)."""
    if callback not in _after_partner_billed:
        _after_partner_billed.append(callback)
    return callback


def after_partner_billed(*, partner, documents: list, through: date, actor) -> None:
    """A billing run issued `documents` (the partner's CI and INVs, in issue order) for `partner`: run every
    registered callback, in the partner's transaction (an error rolls the partner's billing back with it)."""
    for callback in _after_partner_billed:
        callback(partner=partner, documents=documents, through=through, actor=actor)


# --- what follows a run's documents ------------------------------------------------------------------------------
# follower(document ids) -> [line, ...]: what a later layer wrote after those documents, one line of text each
# (rebilling: its customer invoices, and the charges it could not rebill), for run_billing's output and the
# admin's record of a run
DocumentFollowers = Callable[[list[int]], list[str]]

_followers: list[DocumentFollowers] = []


def register_document_followers(callback: DocumentFollowers) -> DocumentFollowers:
    """Describe what `callback`'s layer writes after a run's documents (used as a decorator too)."""
    if callback not in _followers:
        _followers.append(callback)
    return callback


def document_followers(document_ids: list[int]) -> list[str]:
    """Every registered layer's lines about what followed the documents, in registration order."""
    return [line for callback in _followers for line in callback(list(document_ids))]


# --- emails that never left ---------------------------------------------------------------------------------------
# sender() -> None: queue again the emails of a later layer's documents that never left (rebilling's customer
# invoices), called by the daily payment-status job, which does the same for the partners' own invoices
UnsentEmails = Callable[[], None]

_unsent_emails: list[UnsentEmails] = []


def register_unsent_emails(callback: UnsentEmails) -> UnsentEmails:
    """Have the daily job queue again what `callback`'s layer emails and never sent (used as a decorator too)."""
    if callback not in _unsent_emails:
        _unsent_emails.append(callback)
    return callback


def unsent_emails_enqueue() -> None:
    """Every registered layer's emails that never left, queued again."""
    for callback in _unsent_emails:
        callback()
