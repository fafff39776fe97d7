"""Locale selection, formatting filters and catalog compilation.

Compiled catalogs (.mo) are not committed: they are built at start whenever a .po is newer,
so a fresh clone shows German without a manual step.
"""
from __future__ import annotations

import logging
import re
import subprocess
import sys
from decimal import Decimal, InvalidOperation

import click
from babel import numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_currency, format_decimal, get_locale, refresh
from flask_login import current_user

from backoffice import sentences
from backoffice.config import PROJECT_ROOT

log = logging.getLogger(__name__)
TRANSLATIONS = PROJECT_ROOT / "translations"


def compile_catalogs_if_stale(force: bool = False) -> list[str]:
    """Compile every translations/<locale>/LC_MESSAGES/messages.po whose .mo is missing or older."""
    compiled = []
    for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parent.parent.name)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        tmp.replace(mo_path)
        compiled.append(str(mo_path))
    if compiled:
        log.info("compiled %d translation catalog(s)", len(compiled))
    return compiled


def select_locale() -> str:
    languages = list(current_app.config["LANGUAGES"])
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def money(value: Decimal | int | str | None, currency: str | None = None) -> str:
    """Money in the operator's locale; '—' for an absent amount; zero unsigned (a credit note's
    nil VAT is 0.00, not -0.00)."""
    if value is None:
        return "—"
    amount = Decimal(value)
    return format_currency(abs(amount) if amount == 0 else amount, currency or current_app.config["PLATFORM_CURRENCY"])


def unit_price(value: Decimal | str | None, currency: str | None = None) -> str:
    """A price per unit with all its decimals (0.005 per message is not 0.01)."""
    if value is None:
        return "—"
    return numbers.format_currency(Decimal(value), currency or current_app.config["PLATFORM_CURRENCY"],
                                   locale=get_locale(), decimal_quantization=False)


def signed_money(value: Decimal | None, currency: str | None = None) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    text = money(abs(value), currency)
    if value > 0:
        return "+" + text
    if value < 0:
        return "−" + text
    return text


def number(value) -> str:
    return "—" if value is None else format_decimal(value)


def init_app(app: Flask) -> None:
    @app.before_request
    def _fresh_locale():
        # Flask-Babel caches the locale on the app context, which a test client (or a CLI
        # that serves requests) may share across requests: decide it anew for each request.
        refresh()

    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["signed_money"] = signed_money
    app.jinja_env.filters["unit_price"] = unit_price
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["sentence"] = sentences.shown
    app.jinja_env.filters["discrepancy_kind"] = sentences.kind_label

    @app.context_processor
    def _locale():
        return {"current_locale": str(get_locale()), "languages": app.config["LANGUAGES"]}


# --- `backoffice i18n extract|update|compile`: the translators' workflow (pybabel underneath).

POT = PROJECT_ROOT / "translations" / "messages.pot"


def _pybabel(*args: str) -> None:
    cmd = [sys.executable, "-m", "babel.messages.frontend", *args]
    subprocess.run(cmd, check=True, cwd=PROJECT_ROOT)


@click.group("i18n", help="Translation catalogs under translations/.")
def i18n() -> None:
    pass


@i18n.command("extract")
def extract() -> None:
    """Collect every translatable string into translations/messages.pot."""
    _pybabel("extract", "-F", "babel.cfg", "-k", "_l", "-k", "N_", "--no-location", "--sort-output",
             "-o", str(POT), "backoffice")


@i18n.command("update")
def update() -> None:
    """Extract, then merge new strings into every locale's messages.po."""
    extract.callback()
    _pybabel("update", "-i", str(POT), "-d", "translations", "--no-wrap", "--ignore-obsolete")


@i18n.command("compile")
def compile_() -> None:
    """Compile the .po catalogs to .mo (the app also does this at start when they are stale)."""
    for path in compile_catalogs_if_stale(force=True):
        click.echo(f"compiled {path}")


compile_.name = "compile"


_ONE_SEPARATOR = re.compile(r"(\d+)([.,])(\d+)")


def parse_decimal_input(raw: str, locale=None) -> Decimal:
    """A number an operator typed, in their locale or not: "2,50" and "2.50" are both 2.50; a
    separator followed by exactly three digits is the locale's grouping when it is that locale's
    grouping symbol ("4.900" is 4900 in German, "4,900" in English), else a decimal point; more
    than one separator is read by the locale's rules (babel, strict: "1.234,50" in German). Spaces
    and apostrophes (Swiss grouping) are ignored. Raises InvalidOperation when it is no number."""
    text = re.sub(r"[\s'\u2019\u00a0\u202f]", "", raw)
    locale = locale or (get_locale() if has_request_context() else None) or "en"
    if re.fullmatch(r"-?\d+", text):
        return Decimal(text)
    match = _ONE_SEPARATOR.fullmatch(text.lstrip("-"))
    if match:
        whole, separator, digits = match.groups()
        grouping = numbers.get_group_symbol(locale)
        if separator == grouping and len(digits) == 3 and not whole.startswith("0") \
                and separator != numbers.get_decimal_symbol(locale):
            return Decimal(("-" if text.startswith("-") else "") + whole + digits)
        return Decimal(text.replace(",", "."))
    try:
        return numbers.parse_decimal(text, locale=locale, strict=True)
    except numbers.NumberFormatError:
        raise InvalidOperation(raw) from None
