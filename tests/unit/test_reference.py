"""The settings page is generated from the code; this fails when they drift apart."""

from __future__ import annotations

from pathlib import Path

from certbot_dane_tlsa.reference import settings_markdown
from certbot_dane_tlsa.settings import OPTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_page_is_up_to_date() -> None:
    page = (DOCS / "settings.md").read_text()
    assert page == settings_markdown(), (
        "run: python -m certbot_dane_tlsa.reference > docs/settings.md"
    )


def test_every_product_key_is_documented() -> None:
    product_keys = {
        "zone", "zone_file", "hosts", "ports", "proto", "params", "ttl", "serial", "backend",
        "rndc", "nameservers", "verify", "postfix_container", "docker", "log_file",
    }  # fmt: skip
    assert product_keys <= {o.key for o in OPTIONS}
    page = (DOCS / "settings.md").read_text()
    for key in product_keys:
        assert f"| `{key}` |" in page
