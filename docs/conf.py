"""Sphinx configuration for the certbot-dane-tlsa documentation (Markdown via myst-parser).

Build with ``scripts/build-docs``: HTML and the ``certbot-dane-tlsa(1)`` man page. Nothing here
imports the package, so the docs build without its dependencies (certbot, dnspython, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    """``__version__`` read as text: importing the package would pull in its dependencies."""
    text = (_ROOT / "certbot_dane_tlsa" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("certbot_dane_tlsa/__init__.py has no __version__")
    return match.group(1)


project = "certbot-dane-tlsa"
author = "certbot-dane-tlsa developers"
copyright = "certbot-dane-tlsa developers"
release = _version()
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "dev", "requirements.txt", "Thumbs.db", ".DS_Store"]

# Links such as [views](bind.md#views) resolve to the heading's anchor.
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

nitpicky = False
language = "en"
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"{project} {release}"
html_static_path: list[str] = []

man_pages = [
    (
        "man",
        "certbot-dane-tlsa",
        "keep DANE TLSA records in BIND zones true to certbot certificates",
        [author],
        1,
    ),
]
man_show_urls = False
