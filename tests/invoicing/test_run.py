"""The month-end run (issue 20 parts 2, 3, 8, 9): DOMAIN §6's figures fed through the real ingest
API, run from the CLI, the page and the API; quotes priced by the same engine, line for line."""
from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.invoicing import quotes, run
from backoffice.invoicing.cli import invoicing
from backoffice.invoicing.models import (
    AddonPrice,
    InvoicingRun,
    MeteredPrice,
    PlanAllowance,
    PlanPrice,
    PlatformInvoice,
    PlatformInvoiceLine,
    VatSetting,
)
from tests.usage.helpers import iso, make_api

NOVEMBER = "2026-11"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def chf_book(valid_from: date = date(2026, 1, 1)) -> None:
    """Seller CH at 8.1 %: plan team 49.00/month with 1,000 messages_out, setup 99.00; add-on
    support 0.10/day; messages_out 0.005 each."""
    db.session.add_all([
        VatSetting(seller_country="CH", domestic_countries="CH,LI", domestic_rate=Decimal("8.1"), valid_from=valid_from),
        PlanPrice(plan="team", name="Team", currency="CHF", monthly_base=Decimal("49.00"), setup_fee=Decimal("99.00"),
                  valid_from=valid_from, allowances=[PlanAllowance(metric="messages_out",
                                                                   included_quantity=Decimal(1000))]),
        AddonPrice(addon="support", period="day", price=Decimal("0.10"), currency="CHF", valid_from=valid_from),
        MeteredPrice(metric="messages_out", unit_price=Decimal("0.005"), currency="CHF", valid_from=valid_from),
    ])
    db.session.commit()


def usage(api, deployment: str, metric: str, quantities: list[int], day: str) -> None:
    records = [{"deployment": deployment, "metric": metric, "quantity": str(q), "occurred_at": iso(at(f"{day}T12:00")),
                "idempotency_key": f"{deployment}-{metric}-{day}-{i}"} for i, q in enumerate(quantities)]
    assert api.post("/usage", {"records": records}).status_code in (200, 201)


def events(api, deployment: str, *items: tuple[str, str]) -> None:
    body = {"events": [{"type": kind, "occurred_at": iso(at(when)), "add_on": "support"} for kind, when in items]}
    assert api.post(f"/deployments/{deployment}/events", body).status_code in (200, 201)


def the_chf_account(api, account_id: str = "acc_chf", **billing) -> None:
    """Created 2026-11-17 10:00; the add-on on 11-20 09:00–15:00 and 18:00 to 11-25 12:00;
    3,417 messages_out in November (and some in October and December, which do not count)."""
    api.account(account_id, name="Zürich Apps AG", billing={"country": "CH", **billing})
    assert api.deployment(f"{account_id}-web", account_id, plan="team", at=at("2026-11-17T10:00")).status_code in (200, 201)
    events(api, f"{account_id}-web", ("add_on_enabled", "2026-11-20T09:00"), ("add_on_disabled", "2026-11-20T15:00"),
           ("add_on_enabled", "2026-11-20T18:00"), ("add_on_disabled", "2026-11-25T12:00"))
    usage(api, f"{account_id}-web", "messages_out", [1000, 1000, 1000, 417], "2026-11-28")
    usage(api, f"{account_id}-web", "messages_out", [5000], "2026-12-01")


def _lines(invoice: PlatformInvoice) -> list[tuple]:
    return [(line.kind, line.quantity, line.amount) for line in invoice.lines]


def _invoice(account_id: str, period: str = NOVEMBER) -> PlatformInvoice:
    db.session.expire_all()
    return db.session.execute(db.select(PlatformInvoice).where(PlatformInvoice.account_id == account_id,
                                                               PlatformInvoice.period == period)).scalar_one()


def test_the_chf_month_to_the_cent_and_a_rerun_skips(app, client, runner):
    chf_book()
    api = make_api(client)
    the_chf_account(api)
    result = runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    assert result.exit_code == 0, result.output
    assert "1 accounts examined, 1 invoices created, 0 rebuilt, 0 skipped, 0 failed." in result.output
    assert "total CHF 145.46" in result.output
    invoice = _invoice("acc_chf")
    assert _lines(invoice) == [("plan_base", Decimal(14), Decimal("22.87")), ("setup", Decimal(1), Decimal("99.00")),
                               ("addon", Decimal(6), Decimal("0.60")), ("overage", Decimal(2417), Decimal("12.09"))]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("134.56"), Decimal("10.90"), Decimal("145.46"))
    assert (invoice.status, invoice.currency, invoice.vat_rate, invoice.vat_reason) == (
        "draft", "CHF", Decimal("8.1"), "domestic")
    base, _setup, addon, overage = invoice.lines
    assert base.days == [["2026-11-17", "2026-11-30"]] and base.monthly_price == Decimal(49)
    assert addon.days == [["2026-11-20", "2026-11-25"]]
    assert (overage.used, overage.included, overage.unit_price) == (Decimal(3417), Decimal(1000), Decimal("0.005"))

    again = runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    assert again.exit_code == 0
    assert "0 invoices created, 0 rebuilt, 1 skipped" in again.output and "skipped: 1 invoice exists" in again.output
    assert db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoice)) == 1
    runs = db.session.execute(db.select(InvoicingRun).order_by(InvoicingRun.id)).scalars().all()
    assert [(r.created, r.skipped, r.summary["totals"]) for r in runs] == [(1, 0, {"CHF": "145.46"}), (0, 1, {})]


def test_force_rebuilds_a_draft_from_what_the_logs_say_now(app, client, runner):
    chf_book()
    api = make_api(client)
    the_chf_account(api)
    assert runner.invoke(invoicing, ["run", "--period", NOVEMBER]).exit_code == 0
    usage(api, "acc_chf-web", "messages_out", [1000], "2026-11-29")  # a late record
    assert runner.invoke(invoicing, ["run", "--period", NOVEMBER]).exit_code == 0
    assert _invoice("acc_chf").total == Decimal("145.46")  # without --force: kept
    result = runner.invoke(invoicing, ["run", "--period", NOVEMBER, "--force", "--account", "acc_chf"])
    assert "0 invoices created, 1 rebuilt" in result.output, result.output
    rebuilt = _invoice("acc_chf")
    assert rebuilt.lines[-1].amount == Decimal("17.09")  # 4,417 used, 3,417 over the 1,000 at 0.005
    assert db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoiceLine)) == 4


def test_an_issued_invoice_is_never_rebuilt(app, client, runner):
    chf_book()
    the_chf_account(make_api(client))
    runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    invoice = _invoice("acc_chf")
    invoice.status, invoice.number = "issued", "2026-000001"
    db.session.commit()
    result = runner.invoke(invoicing, ["run", "--period", NOVEMBER, "--force"])
    assert "skipped: 1 invoice issued" in result.output
    assert _invoice("acc_chf").id == invoice.id


def test_suspension_and_deletion_days(app, client, runner):
    """All of November, suspended 11-10 08:00 and resumed 11-12 14:00 → 29 days, 47.37; deleted at
    2026-11-05 00:00:00 → 4 days (the deletion day does not count)."""
    chf_book()
    api = make_api(client)
    api.account("acc_s", billing={"country": "CH"})
    api.account("acc_d", billing={"country": "CH"})
    api.deployment("s-web", "acc_s", plan="team", at=at("2026-10-01T00:00"))
    api.deployment("s-web", "acc_s", plan="team", suspended=True, at=at("2026-11-10T08:00"))
    api.deployment("s-web", "acc_s", plan="team", suspended=False, at=at("2026-11-12T14:00"))
    api.deployment("d-web", "acc_d", plan="team", at=at("2026-10-01T00:00"))
    assert api.delete("/deployments/d-web", {"occurred_at": "2026-11-05T00:00:00Z"}).status_code in (200, 204)
    assert runner.invoke(invoicing, ["run", "--period", NOVEMBER]).exit_code == 0
    assert _lines(_invoice("acc_s")) == [("plan_base", Decimal(29), Decimal("47.37"))]
    assert _lines(_invoice("acc_d")) == [("plan_base", Decimal(4), Decimal("6.53"))]


@pytest.mark.parametrize(("country", "vat_id", "rate", "reason", "note"), [
    ("DE", "DE123456789", "0", "reverse_charge", "DE123456789"),
    ("FR", None, "0", "export", "Export of services"),
    ("LI", None, "8.1", "domestic", ""),
])
def test_vat_of_the_customer(app, client, runner, country, vat_id, rate, reason, note):
    chf_book()
    api = make_api(client)
    the_chf_account(api, "acc_vat", country=country, **({"vat_id": vat_id} if vat_id else {}))
    runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    invoice = _invoice("acc_vat")
    assert (invoice.vat_rate, invoice.vat_reason) == (Decimal(rate), reason)
    assert note in invoice.vat_note and invoice.customer_country == country
    assert invoice.tax == (Decimal("10.90") if reason == "domestic" else Decimal("0.00"))


def test_the_arcadia_month(app, client, runner):
    """AU seller and customer at 10 %: plan 50.00 with 1488 resource hours, add-on 7.50 per month,
    resource hours 0.01 each, all of April 2026 with 2160 hours → 64.22, tax 6.42, total 70.64."""
    day = date(2026, 1, 1)
    db.session.add_all([
        VatSetting(seller_country="AU", domestic_countries="AU", domestic_rate=Decimal(10), valid_from=day),
        PlanPrice(plan="vps", name="VPS", currency="AUD", monthly_base=Decimal(50), setup_fee=Decimal(0), valid_from=day,
                  allowances=[PlanAllowance(metric="resource_hours", included_quantity=Decimal(1488))]),
        AddonPrice(addon="support", period="month", price=Decimal("7.50"), currency="AUD", valid_from=day),
        MeteredPrice(metric="resource_hours", unit_price=Decimal("0.01"), currency="AUD", valid_from=day)])
    db.session.commit()
    api = make_api(client)
    api.account("acc_au", name="Arcadia Pty", billing={"country": "AU"})
    api.deployment("au-1", "acc_au", plan="vps", add_ons=["support"], at=at("2026-03-15T00:00"))
    usage(api, "au-1", "resource_hours", [720, 720, 720], "2026-04-30")
    result = runner.invoke(invoicing, ["run", "--period", "2026-04"])
    assert "total AUD 70.64" in result.output, result.output
    invoice = _invoice("acc_au", "2026-04")
    assert _lines(invoice) == [("plan_base", Decimal(30), Decimal("50.00")), ("addon", Decimal(30), Decimal("7.50")),
                               ("overage", Decimal(672), Decimal("6.72"))]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("64.22"), Decimal("6.42"), Decimal("70.64"))
    assert "skipped: 1 invoice exists" in runner.invoke(invoicing, ["run", "--period", "2026-04"]).output


def test_one_accounts_error_never_stops_the_others(app, client, runner):
    chf_book()
    api = make_api(client)
    the_chf_account(api)
    api.account("acc_bad", billing={"country": "CH"})
    api.deployment("bad-web", "acc_bad", plan="enterprise", at=at("2026-10-01T00:00"))  # no price for it
    api.account("acc_off", billing={"country": "CH"}, billing_posture={"auto_invoice": False})
    api.deployment("off-web", "acc_off", plan="team", at=at("2026-10-01T00:00"))
    result = runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    assert result.exit_code == 1
    assert "3 accounts examined, 1 invoices created, 0 rebuilt, 1 skipped, 1 failed." in result.output
    assert "FAILED acc_bad: no price for the plan 'enterprise' on 2026-11-01" in result.output
    assert "skipped: 1 auto-invoice off" in result.output
    assert _invoice("acc_chf").total == Decimal("145.46")


@pytest.mark.parametrize("period", ["2026-13", "26-11", "2026/11", "", "2999-01"])
def test_a_bad_period_is_refused_naming_it(app, runner, admin_client, period):
    result = runner.invoke(invoicing, ["run", "--period", period])
    assert result.exit_code == 2 and "--period" in result.output
    _token, secret = api_services.create_token("ops", "admin")
    resp = admin_client.post("/api/v1/invoicing/runs", json={"period": period},
                             headers={"Authorization": f"Bearer {secret}"})
    # A month that has not ended is a well-formed period a rule refuses: 422.
    expected = 422 if period == "2999-01" else 400
    assert resp.status_code == expected and resp.get_json()["error"]["field"] == "period"
    assert db.session.scalar(db.select(db.func.count()).select_from(InvoicingRun)) == 0


def test_the_page_runs_a_month_and_lists_it(app, client, admin_client):
    chf_book()
    the_chf_account(make_api(client))
    page = admin_client.get("/invoicing")
    assert page.status_code == 200 and "No runs yet." in page.get_data(as_text=True)
    resp = admin_client.post("/invoicing/runs", data={"period": NOVEMBER, "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    listed = admin_client.get("/invoicing").get_data(as_text=True)
    assert "1 created, 0 rebuilt, 0 skipped, 0 failed." in listed and 'data-status="done"' in listed
    assert "CHF" in listed and "145.46" in listed
    refused = admin_client.post("/invoicing/runs", data={"period": "2026-1", "csrf_token": admin_client.csrf})
    assert refused.status_code == 302
    assert "period must be a month written YYYY-MM" in admin_client.get("/invoicing").get_data(as_text=True)


def test_without_a_broker_the_pages_run_goes_to_the_background_and_the_list_polls(app, client, admin_client,
                                                                                  monkeypatch):
    """As users run it (no broker, not a test's in-request job): the POST answers before the
    run is priced; the list refreshes itself while a run is running and stops once it is done."""
    chf_book()
    the_chf_account(make_api(client))
    app.config["JOBS_IN_REQUEST"] = False
    hold = threading.Event()
    real = run.run_in_process

    def held(started, progress=None):
        hold.wait(20)
        return real(started, progress)

    monkeypatch.setattr(run, "run_in_process", held)
    try:
        resp = admin_client.post("/invoicing/runs", data={"period": NOVEMBER, "csrf_token": admin_client.csrf})
        assert resp.status_code == 302
        listed = admin_client.get("/invoicing").get_data(as_text=True)
        assert "started in the background" in listed and 'data-status="running"' in listed
        assert 'hx-trigger="every 2s"' in listed
        hold.set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.execute(db.select(InvoicingRun.status)).scalar_one() != "running":
                break
            time.sleep(0.05)
    finally:
        hold.set()
    listed = admin_client.get("/invoicing").get_data(as_text=True)
    assert 'data-status="done"' in listed and "145.46" in listed and "every 2s" not in listed


def test_the_page_and_its_post_are_for_admins(app, viewer_client):
    assert viewer_client.get("/invoicing").status_code == 403
    assert viewer_client.post("/invoicing/runs", data={"period": NOVEMBER,
                                                        "csrf_token": viewer_client.csrf}).status_code == 403


def test_the_api_runs_a_month(app, client):
    chf_book()
    the_chf_account(make_api(client))
    _token, read = api_services.create_token("bi", "read")
    _token, admin = api_services.create_token("ops", "admin")
    refused = client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER}, headers={"Authorization": f"Bearer {read}"})
    assert refused.status_code == 403
    resp = client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER}, headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "done" and body["trigger"] == "api"
    assert body["summary"] == {"examined": 1, "created": 1, "rebuilt": 0, "skipped": {}, "failures": [],
                               "totals": {"CHF": "145.46"}}
    again = client.get(f"/api/v1/invoicing/runs/{body['id']}", headers={"Authorization": f"Bearer {read}"})
    assert again.get_json() == body
    assert client.get("/api/v1/invoicing/runs/999", headers={"Authorization": f"Bearer {read}"}).status_code == 404


# --- quotes -----------------------------------------------------------------------------------

PLANNED = {"plan": "team", "add_ons": ["support"], "start_day": "2026-11-17", "usage": {"messages_out": "3417"},
           "customer_country": "CH"}


def test_a_quote_is_the_invoice_of_the_same_timeline_line_for_line(app, client, runner):
    """The quoted timeline (created 11-17 00:00 on team with support from then on, 3,417
    messages_out) fed through the ingest API and invoiced by the month-end run."""
    chf_book()
    _token, read = api_services.create_token("sales", "read")
    quoted = client.post("/api/v1/quotes", json=PLANNED, headers={"Authorization": f"Bearer {read}"})
    assert quoted.status_code == 200, quoted.get_json()
    api = make_api(client)
    api.account("acc_q", billing={"country": "CH"})
    api.deployment("planned", "acc_q", plan="team", add_ons=["support"], at=at("2026-11-17T00:00"))
    usage(api, "planned", "messages_out", [3417], "2026-11-20")
    assert runner.invoke(invoicing, ["run", "--period", NOVEMBER]).exit_code == 0
    invoice = _invoice("acc_q")
    body = quoted.get_json()
    assert body["lines"] == [quotes.line_json(line) for line in invoice.lines]
    assert (body["subtotal"], body["tax"], body["total"]) == (str(invoice.subtotal.quantize(Decimal("0.01"))),
                                                             str(invoice.tax.quantize(Decimal("0.01"))),
                                                             str(invoice.total.quantize(Decimal("0.01"))))
    assert [line["amount"] for line in body["lines"]] == ["22.87", "99.00", "1.40", "12.09"]
    assert body["vat"] == {"rate": "8.1", "reason": "domestic", "note": ""}


@pytest.mark.parametrize(("change", "field"), [
    ({"plan": "enterprise"}, "plan"), ({"plan": None}, "plan"), ({"add_ons": ["espresso"]}, "add_ons"),
    ({"start_day": "2026-11-31"}, "start_day"), ({"usage": {"messages_out": "-1"}}, "usage.messages_out"),
    ({"usage": {"coffee": "1"}}, "usage"), ({"customer_country": "Switzerland"}, "customer_country"),
    ({"usage": {"messages_out": "NaN"}}, "usage.messages_out"), ({"add_ons": "support,\u0000"}, "add_ons"),
])
def test_a_bad_quote_is_refused_naming_the_field(app, client, change, field):
    chf_book()
    _token, read = api_services.create_token("sales", "read")
    resp = client.post("/api/v1/quotes", json={**PLANNED, **change}, headers={"Authorization": f"Bearer {read}"})
    # A plan or add-on the price book does not price is well-formed: 422.
    expected = 422 if change in ({"plan": "enterprise"}, {"add_ons": ["espresso"]}) else 400
    assert resp.status_code == expected and resp.get_json()["error"]["field"] == field, resp.get_json()


def test_the_quotes_page_for_any_operator(app, viewer_client):
    chf_book()
    empty = viewer_client.get("/invoicing/quotes")
    assert empty.status_code == 200 and '<option value="team"' in empty.get_data(as_text=True)
    page = viewer_client.get("/invoicing/quotes?plan=team&add_ons=support&start_day=2026-11-17"
                             "&usage_messages_out=3417&customer_country=DE&customer_vat_id=DE123")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-subtotal="135.36"' in html and 'data-tax="0.00"' in html  # reverse charge
    assert "2026-11-17 – 2026-11-30" in html and "Reverse charge" in html
    fragment = viewer_client.get("/invoicing/quotes?plan=team&start_day=2026-11-17", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="quote-result"')
    bad = viewer_client.get("/invoicing/quotes?plan=nope&start_day=2026-11-17")
    assert bad.status_code == 400 and 'data-field="plan"' in bad.get_data(as_text=True)


def test_the_openapi_document_describes_quotes_and_runs(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/api/v1/quotes"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Quote"}
    assert set(doc["paths"]["/api/v1/invoicing/runs"]["post"]["responses"]) == {
        "200", "202", "400", "401", "403", "404", "413", "415", "422"}
    assert doc["components"]["schemas"]["InvoiceLine"]["properties"]["kind"]["enum"] == [
        "plan_base", "setup", "addon", "overage"]


def test_previous_period_and_parse_period():
    assert str(run.previous_period(at("2026-01-01T03:00"))) == "2025-12"
    assert str(run.parse_period("2026-11", at("2026-12-01T00:00"))) == "2026-11"
    with pytest.raises(Exception, match="has not ended yet"):
        run.parse_period("2026-12", at("2026-12-31T23:59"))


def test_the_schedule_runs_the_month_just_ended_on_the_first_at_three(app, client):
    from celery.schedules import crontab

    from backoffice.invoicing import tasks
    from backoffice.jobs import celery_app
    from backoffice.stripe import tasks as stripe_tasks

    stripe_tasks.setup_beat()  # what `backoffice worker` does: the drift pass joins, the month end stays
    entry = celery_app.conf.beat_schedule["invoicing-month-end"]
    assert entry["task"] == "invoicing.month_end"
    assert entry["schedule"] == crontab(minute=0, hour=3, day_of_month=1)
    assert "stripe-drift-pass" in celery_app.conf.beat_schedule
    chf_book()
    the_chf_account(make_api(client))
    run_id = tasks.month_end.delay().get()
    found = db.session.get(InvoicingRun, run_id)
    assert (found.period, found.trigger, found.created) == (str(run.previous_period()), "schedule", 1)


def test_mixed_currencies_fail_that_account_alone(app, client, runner):
    chf_book()
    db.session.add(AddonPrice(addon="euro-support", period="month", price=Decimal(5), currency="EUR",
                              valid_from=date(2026, 1, 1)))
    db.session.commit()
    api = make_api(client)
    the_chf_account(api)
    api.account("acc_mixed", billing={"country": "CH"})
    api.deployment("mixed-web", "acc_mixed", plan="team", add_ons=["euro-support"], at=at("2026-10-01T00:00"))
    result = runner.invoke(invoicing, ["run", "--period", NOVEMBER])
    assert result.exit_code == 1
    assert "FAILED acc_mixed: prices in more than one currency: CHF, EUR" in result.output
    assert "1 invoices created" in result.output and _invoice("acc_chf").total == Decimal("145.46")
