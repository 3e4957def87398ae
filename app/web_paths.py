"""Where the non-Python assets live (templates, static files, locale catalogues)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
LOCALE_DIR = ROOT / "locale"
