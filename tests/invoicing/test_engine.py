"""The quote engine (backoffice/invoicing/engine.py) on DOMAIN §6's rules and the issue's exact
figures, and its properties over generated timelines. Pure: no app, no database."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.invoicing import engine
from backoffice.invoicing.engine import (
    AddonVersion,
    MeteredVersion,
    Period,
    PlanVersion,
    PriceBook,
    PricingError,
    Timeline,
)

D = Decimal
SETTINGS = settings(max_examples=200, deadline=None, database=None)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def amounts(lines) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(line.kind, line.key, line.quantity, line.amount) for line in lines]


# --- the issue's figures --------------------------------------------------------------------

ARCADIA = PriceBook.of(
    plans=[PlanVersion("au-standard", "Standard", "AUD", D("50.00"), D(0), date(2026, 1, 1),
                       {"resource_hours": D(1488)})],
    addons=[AddonVersion("backup", "month", D("7.50"), "AUD", date(2026, 1, 1))],
    metered=[MeteredVersion("resource_hours", D("0.01"), "AUD", date(2026, 1, 1))])


def test_arcadia_april_with_gst():
    april = Period(2026, 4)
    timeline = Timeline("au-1", at("2026-03-02T08:00"), plans=[(at("2026-03-02T08:00"), "au-standard")],
                        addons=[(at("2026-03-02T08:00"), "backup", True)])
    vat = engine.vat_decision(["AU"], D(10), "AU", None)
    quote = engine.price_account([timeline], april, ARCADIA, {"au-1": {"resource_hours": D(2160)}}, vat)
    assert amounts(quote.lines) == [("plan_base", "au-standard", 30, D("50.00")), ("addon", "backup", 30, D("7.50")),
                                    ("overage", "resource_hours", 672, D("6.72"))]
    assert (quote.subtotal, quote.tax, quote.total, quote.currency) == (D("64.22"), D("6.42"), D("70.64"), "AUD")
    overage = quote.lines[2]
    assert (overage.used, overage.included, overage.unit_price) == (D(2160), D(1488), D("0.01"))


CHF = PriceBook.of(
    plans=[PlanVersion("starter", "Starter", "CHF", D("49.00"), D("99.00"), date(2026, 1, 1),
                       {"messages_out": D(1000)})],
    addons=[AddonVersion("translator", "day", D("0.10"), "CHF", date(2026, 1, 1))],
    metered=[MeteredVersion("messages_out", D("0.005"), "CHF", date(2026, 1, 1))])
SWISS = engine.vat_decision(["CH", "LI"], D("8.1"), "CH", None)


def test_chf_november_created_mid_month_with_toggles_and_overage():
    timeline = Timeline(
        "ch-1", at("2026-11-17T10:00"), plans=[(at("2026-11-17T10:00"), "starter")],
        addons=[(at("2026-11-20T09:00"), "translator", True), (at("2026-11-20T15:00"), "translator", False),
                (at("2026-11-20T18:00"), "translator", True), (at("2026-11-25T12:00"), "translator", False)])
    quote = engine.price_account([timeline], Period(2026, 11), CHF, {"ch-1": {"messages_out": D(3417)}}, SWISS)
    assert amounts(quote.lines) == [("plan_base", "starter", 14, D("22.87")), ("setup", "starter", 1, D("99.00")),
                                    ("addon", "translator", 6, D("0.60")),
                                    ("overage", "messages_out", 2417, D("12.09"))]
    assert (quote.subtotal, quote.tax, quote.total) == (D("134.56"), D("10.90"), D("145.46"))
    base, _, addon, _ = quote.lines
    assert base.days == ((date(2026, 11, 17), date(2026, 11, 30)),)
    assert addon.dates() == [date(2026, 11, d) for d in range(20, 26)]
    assert base.monthly_price == D("49.00") and base.unit_price == D("1.6333")


def _starter_all_november(**kw) -> Timeline:
    return Timeline("ch-2", at("2026-10-01T00:00"), plans=[(at("2026-10-01T00:00"), "starter")], **kw)


def test_a_suspension_takes_the_days_it_covers_entirely():
    timeline = _starter_all_november(suspensions=[(at("2026-11-10T08:00"), True), (at("2026-11-12T14:00"), False)])
    lines = engine.price_deployment(timeline, Period(2026, 11), CHF)
    assert amounts(lines) == [("plan_base", "starter", 29, D("47.37"))]  # 11-11 is the only day lost
    assert lines[0].days == ((date(2026, 11, 1), date(2026, 11, 10)), (date(2026, 11, 12), date(2026, 11, 30)))


def test_deleted_at_midnight_does_not_count_that_day():
    lines = engine.price_deployment(_starter_all_november(deleted_at=at("2026-11-05T00:00")), Period(2026, 11), CHF)
    assert amounts(lines) == [("plan_base", "starter", 4, cents(D(49) * 4 / 30))]
    assert lines[0].dates()[-1] == date(2026, 11, 4)


def cents(x: Decimal) -> Decimal:
    return engine.cents(x)


@pytest.mark.parametrize(("country", "vat_id", "rate", "reason"), [
    ("DE", "DE123456789", D(0), "reverse_charge"),
    ("FR", None, D(0), "export"),
    ("LI", None, D("8.1"), "domestic"),
    ("CH", "CHE-123.456.789", D("8.1"), "domestic"),
])
def test_vat_decisions(country, vat_id, rate, reason):
    decision = engine.vat_decision(["CH", "LI"], D("8.1"), country, vat_id)
    assert (decision.rate, decision.reason) == (rate, reason)
    if reason == "reverse_charge":
        assert vat_id in decision.note
    elif reason == "export":
        assert decision.note and decision.customer_vat_id is None


# --- the billable-day rules one by one ------------------------------------------------------

def test_the_plan_of_a_day_is_the_plan_at_the_end_of_its_running_time():
    book = PriceBook.of(plans=[PlanVersion("a", "A", "CHF", D(30), D(0), date(2026, 1, 1)),
                               PlanVersion("b", "B", "CHF", D(60), D(0), date(2026, 1, 1))])
    timeline = Timeline("d", at("2026-10-01T00:00"), plans=[(at("2026-10-01T00:00"), "a"),
                                                            (at("2026-11-10T15:00"), "b")])
    lines = engine.price_deployment(timeline, Period(2026, 11), book)
    assert amounts(lines) == [("plan_base", "a", 9, D("9.00")), ("plan_base", "b", 21, D("42.00"))]
    # Deleted at 14:00 that day: its running time ends before the change, so it is plan a's.
    gone = Timeline("d", timeline.created_at, at("2026-11-10T14:00"), plans=timeline.plans)
    assert amounts(engine.price_deployment(gone, Period(2026, 11), book)) == [("plan_base", "a", 10, D("10.00"))]


def test_a_price_change_mid_month_splits_the_line():
    book = PriceBook.of(plans=[PlanVersion("a", "A", "CHF", D(30), D(0), date(2026, 1, 1)),
                               PlanVersion("a", "A", "CHF", D(60), D(0), date(2026, 11, 21))])
    lines = engine.price_deployment(Timeline("d", at("2026-10-01T00:00"), plans=[(at("2026-10-01T00:00"), "a")]),
                                    Period(2026, 11), book)
    assert [(line.quantity, line.amount, line.price_valid_from) for line in lines] == [
        (20, D("20.00"), date(2026, 1, 1)), (10, D("20.00"), date(2026, 11, 21))]


def test_an_addon_counts_only_while_the_deployment_runs():
    timeline = _starter_all_november(
        addons=[(at("2026-09-01T00:00"), "translator", True)],
        suspensions=[(at("2026-11-03T00:00"), True), (at("2026-11-06T00:00"), False)])
    lines = engine.price_deployment(timeline, Period(2026, 11), CHF)
    assert amounts(lines) == [("plan_base", "starter", 27, cents(D(49) * 27 / 30)),
                              ("addon", "translator", 27, D("2.70"))]


def test_no_setup_fee_outside_the_month_of_creation_and_allowance_of_the_last_billable_day():
    book = PriceBook.of(
        plans=[PlanVersion("a", "A", "CHF", D(30), D(10), date(2026, 1, 1), {"messages_out": D(100)}),
               PlanVersion("b", "B", "CHF", D(60), D(10), date(2026, 1, 1), {"messages_out": D(1000)})],
        metered=[MeteredVersion("messages_out", D("0.01"), "CHF", date(2026, 1, 1))])
    timeline = Timeline("d", at("2026-10-20T00:00"), plans=[(at("2026-10-20T00:00"), "a"),
                                                            (at("2026-11-29T12:00"), "b")])
    lines = engine.price_deployment(timeline, Period(2026, 11), book, {"messages_out": D(1200)})
    assert [line.kind for line in lines] == ["plan_base", "plan_base", "overage"]
    assert (lines[-1].included, lines[-1].quantity, lines[-1].amount) == (D(1000), D(200), D("2.00"))


def test_what_has_no_price_or_mixes_currencies_is_an_error_naming_it():
    timeline = Timeline("d", at("2026-10-01T00:00"), plans=[(at("2026-10-01T00:00"), "gold")])
    with pytest.raises(PricingError) as excinfo:
        engine.price_deployment(timeline, Period(2026, 11), CHF)
    assert excinfo.value.key == "gold"
    with pytest.raises(PricingError) as excinfo:
        engine.price_deployment(_starter_all_november(), Period(2026, 11), CHF, {"ai_tokens": D(5)})
    assert excinfo.value.key == "ai_tokens"
    euro = PriceBook.of(plans=CHF.plans["starter"]._versions,
                        addons=[AddonVersion("translator", "day", D("0.10"), "EUR", date(2026, 1, 1))])
    lines = engine.price_deployment(_starter_all_november(addons=[(at("2026-11-02T00:00"), "translator", True)]),
                                    Period(2026, 11), euro)
    with pytest.raises(PricingError) as excinfo:
        engine.total(lines, SWISS)
    assert excinfo.value.key == "EUR"


def test_period_parsing():
    assert str(Period.parse("2026-02")) == "2026-02" and Period.parse("2026-02").days == 28
    assert Period(2026, 1).previous() == Period(2025, 12)
    for bad in ("2026-13", "2026-1", "26-01", "2026/01", "", "abcd-ef"):
        with pytest.raises(ValueError):
            Period.parse(bad)


# --- properties -----------------------------------------------------------------------------

months = st.builds(Period, st.integers(2020, 2030), st.integers(1, 12))
prices = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False, allow_infinity=False)


def _book(monthly: Decimal, addon: Decimal = Decimal("3.00")) -> PriceBook:
    return PriceBook.of(plans=[PlanVersion("p", "P", "CHF", monthly, D(0), date(2000, 1, 1))],
                        addons=[AddonVersion("x", "month", addon, "CHF", date(2000, 1, 1))])


@SETTINGS
@given(months, prices)
def test_a_whole_month_pays_exactly_the_monthly_price(period, monthly):
    timeline = Timeline("d", period.start - timedelta(days=40), plans=[(period.start - timedelta(days=40), "p")],
                        addons=[(period.start - timedelta(days=3), "x", True)])
    lines = engine.price_deployment(timeline, period, _book(monthly))
    assert [line.amount for line in lines] == [monthly, D("3.00")]


@SETTINGS
@given(months, st.lists(st.integers(1, 27), min_size=1, max_size=6, unique=True))
def test_the_days_of_any_split_of_a_month_add_up_to_the_whole(period, cuts):
    """Suspended and resumed at midnights: the running days of the pieces sum to the month."""
    marks = sorted(period.start + timedelta(days=c) for c in cuts)
    pieces = [period.start, *marks, period.end]
    total_days = 0
    for i in range(len(pieces) - 1):
        created = period.start - timedelta(days=1)
        timeline = Timeline("d", created, plans=[(created, "p")],
                            suspensions=[(period.start, True), (pieces[i], False), (pieces[i + 1], True)])
        lines = engine.price_deployment(timeline, period, _book(D(31)))
        total_days += sum(int(line.quantity) for line in lines)
    assert total_days == period.days


@SETTINGS
@given(months, st.integers(0, 27), st.integers(0, 23), st.integers(0, 59), st.integers(1, 59))
def test_a_toggle_within_an_already_counted_day_changes_nothing(period, day, hour, minute, length):
    created = period.start - timedelta(days=5)
    base = Timeline("d", created, plans=[(created, "p")], addons=[(period.start + timedelta(days=day), "x", True)])
    off = period.start + timedelta(days=day, hours=hour, minutes=minute)
    toggled = Timeline("d", created, plans=base.plans, addons=[*base.addons, (off, "x", False),
                                                               (off + timedelta(seconds=length), "x", True)])
    assert engine.price_deployment(base, period, _book(D(30))) == engine.price_deployment(toggled, period, _book(D(30)))


moments = st.integers(-40 * 24, 70 * 24).map(lambda h: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h))


@SETTINGS
@given(moments, st.one_of(st.none(), moments), st.lists(st.tuples(moments, st.booleans()), max_size=6),
       st.lists(st.tuples(moments, st.booleans()), max_size=6), prices, st.decimals(0, 10**6, places=3))
def test_amounts_are_never_negative(created, deleted, toggles, suspensions, monthly, used):
    if deleted is not None and deleted < created:
        created, deleted = deleted, created
    timeline = Timeline("d", created, deleted, plans=[(created, "p")],
                        addons=sorted((at_, "x", on) for at_, on in toggles), suspensions=sorted(suspensions))
    book = PriceBook.of(plans=[PlanVersion("p", "P", "CHF", monthly, D("5"), date(2000, 1, 1), {"messages_in": D(10)})],
                        addons=[AddonVersion("x", "day", D("0.25"), "CHF", date(2000, 1, 1))],
                        metered=[MeteredVersion("messages_in", D("0.001"), "CHF", date(2000, 1, 1))])
    lines = engine.price_deployment(timeline, Period(2026, 3), book, {"messages_in": used})
    assert all(line.amount >= 0 and line.quantity >= 0 for line in lines)
    assert all(len(line.dates()) == line.quantity <= 31 for line in lines if line.kind in ("plan_base", "addon"))
