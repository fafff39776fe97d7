"""The price book: admin-only, versioned by valid_from, every change audited with before and after."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.invoicing import queries
from backoffice.invoicing.models import AddonPrice, MeteredPrice, PlanPrice
from backoffice.operators.models import AuditEntry

HX = {"HX-Request": "true"}


def _post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": client.csrf})


def _plan(client, valid_from="2026-01-01", base="49.00", **extra):
    return _post(client, "/invoicing/price-book/plans/new", plan="team", name="Team", monthly_base=base,
                 setup_fee="99.00", currency="chf", valid_from=valid_from, included_messages_out="1000",
                 **extra)


def test_plan_versions_and_prices_on_a_day(admin_client):
    assert _plan(admin_client).status_code == 302
    assert _plan(admin_client, valid_from="2026-04-01", base="59.00").status_code == 302
    book = queries.price_book(date(2026, 4, 30))
    march, april = (book.plans["team"].on(day.toordinal()) for day in (date(2026, 3, 31), date(2026, 4, 1)))
    assert march.monthly_base == Decimal("49.0000")
    assert april.monthly_base == Decimal("59.0000")
    assert april.setup_fee == Decimal("99.0000")
    assert april.currency == "CHF"
    assert april.included == {"messages_out": Decimal("1000.0000")}
    assert book.plans["team"].on(date(2025, 12, 31).toordinal()) is None
    assert queries.price_book(date(2026, 3, 31)).plans["team"].on(date(2026, 4, 1).toordinal()) == march
    dup = _plan(admin_client, valid_from="2026-04-01")
    assert dup.status_code == 422
    assert "already valid from 2026-04-01" in dup.get_data(as_text=True)


def test_addon_metered_and_vat_entries(admin_client):
    assert _post(admin_client, "/invoicing/price-book/add-ons/new", addon="searxng-local-search", period="day",
                 price="0.10", currency="CHF", valid_from="2026-01-01").status_code == 302
    assert _post(admin_client, "/invoicing/price-book/metered/new", metric="messages_out", unit_price="0.00012",
                 currency="CHF", valid_from="2026-01-01").status_code == 302
    day = date(2026, 2, 1)
    assert queries.vat_on(day) == queries.Vat("CH", ("CH", "LI"), Decimal("8.1"))  # the default
    assert _post(admin_client, "/invoicing/price-book/vat/new", seller_country="ch", domestic_countries="CH, li",
                 domestic_rate="8.1", valid_from="2026-01-01").status_code == 302
    book = queries.price_book(day)
    assert book.addons["searxng-local-search"].on(day.toordinal()).price == Decimal("0.100000")
    assert book.metered["messages_out"].on(day.toordinal()).unit_price == Decimal("0.000120")
    assert queries.vat_on(day) == queries.Vat("CH", ("CH", "LI"), Decimal("8.1000"))
    bad = _post(admin_client, "/invoicing/price-book/metered/new", metric="messages_out", unit_price="-1",
                currency="CHF", valid_from="2026-02-01")
    assert bad.status_code == 422
    assert db.session.execute(sa.select(sa.func.count()).select_from(MeteredPrice)).scalar_one() == 1


def test_edit_and_delete_are_audited_with_before_and_after(admin_client):
    _plan(admin_client)
    row = db.session.execute(sa.select(PlanPrice)).scalar_one()
    form = admin_client.get(f"/invoicing/price-book/plans/{row.id}/edit").get_data(as_text=True)
    assert 'value="49.00"' in form
    resp = _post(admin_client, f"/invoicing/price-book/plans/{row.id}/edit", plan="team", name="Team",
                 monthly_base="55.50", setup_fee="99.00", currency="CHF", valid_from="2026-01-01",
                 included_messages_out="2000", included_resource_hours="720")
    assert resp.status_code == 302
    assert _post(admin_client, f"/invoicing/price-book/plans/{row.id}/delete").status_code == 302
    entries = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action.like("price_book.%"))
                                 .order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["price_book.plans.create", "price_book.plans.update",
                                           "price_book.plans.delete"]
    update = entries[1]
    assert update.operator_email == "admin@example.com"
    assert (update.before["monthly_base"], update.after["monthly_base"]) == ("49.00", "55.50")
    assert (update.before["included_messages_out"], update.after["included_messages_out"]) == ("1000", "2000")
    assert update.after["included_resource_hours"] == "720"
    assert entries[2].before["monthly_base"] == "55.50" and entries[2].after is None
    assert db.session.execute(sa.select(sa.func.count()).select_from(PlanPrice)).scalar_one() == 0


def test_price_book_page_and_admin_only(admin_client, client, viewer):
    _post(admin_client, "/invoicing/price-book/add-ons/new", addon="threema", period="month", price="5",
          currency="CHF", valid_from="2026-01-01")
    html = admin_client.get("/invoicing/price-book").get_data(as_text=True)
    assert "threema" in html and "Deployment plans" in html and "VAT today: 8.1% for CH, LI" in html
    frag = admin_client.get("/invoicing/price-book/add-ons/new", headers=HX).get_data(as_text=True)
    assert frag.lstrip().startswith('<section id="entry-form"')
    assert admin_client.get("/invoicing/price-book/nothing/new").status_code == 404
    admin_client.post("/sign-out", headers={"X-CSRFToken": admin_client.csrf})
    from tests.conftest import sign_in

    client.csrf = sign_in(client, viewer.email)
    assert client.get("/invoicing/price-book").status_code == 403
    resp = client.post("/invoicing/price-book/add-ons/new", data={
        "addon": "x", "period": "day", "price": "1", "currency": "CHF", "valid_from": "2026-01-01",
        "csrf_token": client.csrf})
    assert resp.status_code == 403
    assert db.session.execute(sa.select(sa.func.count()).select_from(AddonPrice)).scalar_one() == 1


def test_money_in_the_operators_locale_and_german_messages(admin_client):
    """Issue 22 part 6: a German operator types "49,50" and "1.234,50"; an English one "2,50" or
    "2.50" alike; what cannot be read is refused in the operator's language, naming the field."""
    from backoffice.i18n import parse_decimal_input

    assert admin_client.post("/operators/me/locale", data={"locale": "de", "csrf_token": admin_client.csrf},
                             headers={"Referer": "/"}).status_code in (302, 204)
    assert _post(admin_client, "/invoicing/price-book/plans/new", plan="team", name="Team", monthly_base="49,50",
                 setup_fee="1.234,50", currency="chf", valid_from="2026-01-01").status_code == 302
    row = db.session.execute(sa.select(PlanPrice)).scalar_one()
    assert (row.monthly_base, row.setup_fee) == (Decimal("49.5000"), Decimal("1234.5000"))
    bad = _plan(admin_client, valid_from="2026-05-01", base="zwölf")
    assert bad.status_code == 422
    assert "Monatliche Grundgebühr muss eine Zahl wie 49.00 (oder 49,00) sein." in bad.get_data(as_text=True)
    assert [parse_decimal_input(raw, "en") for raw in ("2,50", "2.50", "4,900", "0.005", "1,234.50")] == [
        Decimal("2.50"), Decimal("2.50"), Decimal(4900), Decimal("0.005"), Decimal("1234.50")]
    assert [parse_decimal_input(raw, "de") for raw in ("2,50", "2.50", "4.900", "1.234,50")] == [
        Decimal("2.50"), Decimal("2.50"), Decimal(4900), Decimal("1234.50")]
