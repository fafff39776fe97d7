"""The strings app.js shows come from the catalogs: every page carries them, in the operator's
language, as a JSON data block (not script, so the Content-Security-Policy has nothing to refuse)."""
from __future__ import annotations

import json
import re

import pytest

from backoffice.extensions import db

BLOCK = re.compile(r'<script type="application/json" id="js-strings">(.*?)</script>', re.DOTALL)
STRINGS = {
    "en": {"request_failed": "That did not work. Please try again.",
           "forbidden": "You do not have permission to do this."},
    "de": {"request_failed": "Das hat nicht geklappt. Bitte erneut versuchen.",
           "forbidden": "Dafür fehlt Ihnen die Berechtigung."},
}


def js_strings(html: str) -> dict:
    blocks = BLOCK.findall(html)
    assert len(blocks) == 1, blocks
    return json.loads(blocks[0])


@pytest.mark.parametrize("locale", STRINGS)
def test_a_page_carries_the_strings_in_the_operators_language(app, admin_client, admin, locale):
    admin.locale = locale
    db.session.commit()
    for path in ("/accounts", "/ledger", "/no-such-page"):
        html = admin_client.get(path).get_data(as_text=True)
        assert f'<html lang="{locale}">' in html
        assert js_strings(html) == STRINGS[locale], path


@pytest.mark.parametrize(("accept", "locale"), [("de-CH,de;q=0.9", "de"), ("en-GB", "en")])
def test_the_sign_in_page_carries_them_too(client, accept, locale):
    html = client.get("/sign-in", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert js_strings(html) == STRINGS[locale]

