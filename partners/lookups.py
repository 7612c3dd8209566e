"""Natural-key lookups for imports: one query per batch, never one per row."""

from partners.models import Customer, Partner, Service


def partners_by_slug(slugs) -> dict[str, Partner]:
    return {p.slug: p for p in Partner.objects.filter(slug__in=set(slugs))}


def customers_by_key(keys) -> dict[tuple[str, str], Customer]:
    """Customers by (partner slug, customer slug), in one query."""
    keys = set(keys)
    if not keys:
        return {}
    candidates = Customer.objects.filter(
        partner__slug__in={p for p, _ in keys}, slug__in={s for _, s in keys}
    ).select_related("partner")
    return {(c.partner.slug, c.slug): c for c in candidates if (c.partner.slug, c.slug) in keys}


def services_by_key(keys) -> dict[tuple[str, str], Service]:
    """Services by (partner slug, code), in one query."""
    keys = set(keys)
    if not keys:
        return {}
    candidates = Service.objects.filter(
        partner__slug__in={p for p, _ in keys}, code__in={c for _, c in keys}
    ).select_related("partner", "customer")
    return {(s.partner.slug, s.code): s for s in candidates if (s.partner.slug, s.code) in keys}
