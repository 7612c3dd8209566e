"""The partner portal: a partner's own dashboard, billing, customers, seats, team and audit log."""
