"""Shared fixtures: real services (named, unbound, Pebble + certbot, Postfix, podman)."""

pytest_plugins = [
    "tests.services.fixtures_dns",
    "tests.services.fixtures_mail",
    "tests.services.fixtures_dovecot",
]
