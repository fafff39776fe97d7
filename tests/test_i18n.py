"""Every translatable string of the code is in every catalog, and German is complete."""
from __future__ import annotations

from decimal import Decimal

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from backoffice.config import PROJECT_ROOT
from backoffice.i18n import compile_catalogs_if_stale

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_ngettext": (1, 2)}


def _code_msgids() -> set:
    with (PROJECT_ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(PROJECT_ROOT / "backoffice"), method_map, options_map, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else next(iter(message)))
    return ids


def _catalog(locale: str):
    with (PROJECT_ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


@pytest.mark.parametrize("locale", ["en", "de"])
def test_every_msgid_is_in_the_catalog(locale):
    catalog = _catalog(locale)
    in_catalog = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    missing = sorted(_code_msgids() - in_catalog)
    assert not missing, f"{len(missing)} strings missing from {locale} (run `backoffice i18n update`): {missing[:20]}"


def test_german_is_complete_and_not_fuzzy():
    catalog = _catalog("de")
    untranslated = [m.id for m in catalog if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"untranslated German strings: {untranslated[:20]}"
    assert not fuzzy, f"fuzzy German strings: {fuzzy[:20]}"


def test_placeholders_survive_translation():
    import re

    catalog = _catalog("de")
    placeholder = re.compile(r"%\((\w+)\)s")
    for m in catalog:
        if not m.id or not m.string:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        want = set(placeholder.findall(ids[0]))
        for s in strings:
            assert set(placeholder.findall(s)) <= want | set(placeholder.findall(ids[-1])), (m.id, s)


def test_catalogs_compile_at_start():
    compiled = compile_catalogs_if_stale(force=True)
    assert any(p.endswith("de/LC_MESSAGES/messages.mo") for p in compiled)


def test_german_shell_and_money_format(app, admin_client):
    from backoffice.extensions import db
    from backoffice.operators.models import Operator

    op = db.session.execute(db.select(Operator)).scalar_one()
    op.locale = "de"
    db.session.commit()
    html = admin_client.get("/").get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Konten" in html and "Abrechnungsereignisse" in html
    from flask_babel import force_locale

    from backoffice.i18n import money

    with app.test_request_context(), force_locale("de"):
        assert money(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
    with app.test_request_context(), force_locale("en"):
        assert money(Decimal("1234.5"), "EUR") == "€1,234.50"


def test_locale_from_accept_language_when_signed_out(client):
    html = client.get("/sign-in", headers={"Accept-Language": "de-CH,de;q=0.9"}).get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Anmelden" in html
