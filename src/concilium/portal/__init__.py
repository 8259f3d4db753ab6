"""The platform's own pages and JSON API: sign-in, home, administration, patients and
consent, break-the-glass, the audit log, and the operations endpoints."""
