"""The reference pages are generated from the code; these fail when they drift apart."""

from __future__ import annotations

from pathlib import Path

from certbot_dane_tlsa.reference import commands_markdown, settings_markdown
from certbot_dane_tlsa.settings import OPTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_page_is_up_to_date() -> None:
    page = (DOCS / "settings.md").read_text()
    expected = settings_markdown()
    assert page == expected, (
        "run: python -m certbot_dane_tlsa.reference settings > docs/settings.md"
    )


def test_commands_page_is_up_to_date() -> None:
    page = (DOCS / "commands.md").read_text()
    expected = commands_markdown()
    assert page == expected, (
        "run: python -m certbot_dane_tlsa.reference commands > docs/commands.md"
    )
    for command in (
        "deploy",
        "check",
        "record",
        "demo",
        "rollover stage",
        "rollover commit",
        "prune",
    ):
        assert f"## {command}" in page


def test_every_product_key_is_documented() -> None:
    product_keys = {
        "zone", "zone_file", "hosts", "ports", "proto", "params", "ttl", "serial", "backend",
        "rndc", "nameservers", "verify", "postfix_container", "docker", "log_file",
    }  # fmt: skip
    assert product_keys <= {o.key for o in OPTIONS}
    page = (DOCS / "settings.md").read_text()
    for key in product_keys:
        assert f"| `{key}` |" in page
