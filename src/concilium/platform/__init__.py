"""The trust layer: sites, users, roles, authentication, consent, patients, audit, config, db."""
