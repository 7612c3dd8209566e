"""Email lists as written in files and forms: separated by commas or semicolons (billing-rules 9.2)."""


def split_emails(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]
