"""The replay's fast paths give what the plain code gives: minor units in money (cents, zero- and
three-decimal currencies, negative and huge amounts), invoice amounts and times. Pure: no app, no database."""
from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.ledger import readers
from backoffice.ledger.readers import (
    CENT,
    CURRENT_API_VERSION,
    LEGACY_API_VERSION,
    invoice_amounts,
)

SETTINGS = settings(max_examples=300, deadline=None, database=None)
CURRENCIES = ("eur", "EUR", "chf", "jpy", "KRW", "kwd", "BHD", "", None)


def plain_money(minor: int, currency: str | None) -> Decimal:
    """What money(minor_to_major(...)) computed before its fast path."""
    code = (currency or "").upper()
    places = 0 if code in readers._ZERO_DECIMAL else 3 if code in readers._THREE_DECIMAL else 2
    return Decimal(minor).scaleb(-places).quantize(CENT, rounding=ROUND_HALF_UP)


def outcome(f, *args):
    try:
        value = f(*args)
    except (InvalidOperation, OverflowError, ValueError, OSError) as exc:
        return type(exc)
    return value, str(value)  # the same value and the same places


amounts = st.one_of(st.integers(-10**6, 10**6), st.integers(-10**19, 10**19), st.integers(),
                    st.sampled_from([0, 1, -1, 5, -5, 15, -15, 995, -995, 10**18 - 1, -(10**18 - 1), 10**18,
                                     -(10**18), 10**26, 10**28 - 1, 10**28, 10**30]))


@SETTINGS
@given(amounts, st.sampled_from(CURRENCIES))
def test_minor_units_in_money_round_as_before(minor, currency):
    fast = outcome(readers._minor_money, minor, readers._places(currency))
    assert fast == outcome(plain_money, minor, currency)
    assert fast == outcome(lambda m, c: readers.money(readers.minor_to_major(m, c)), minor, currency)


def test_minor_units_examples():
    assert str(readers._minor_money(4900, 2)) == "49.00"
    assert str(readers._minor_money(-1, 2)) == "-0.01"
    assert str(readers._minor_money(4900, 0)) == "4900.00"
    assert str(readers._minor_money(1005, 3)) == "1.01"  # half up
    assert str(readers._minor_money(-1005, 3)) == "-1.01"
    assert str(readers._minor_money(-1004, 3)) == "-1.00"


def invoice(currency: str | None, paid: int, total: int, due: int, subtotal: int, tax: int,
            balances: tuple[int, int] | None, status: str) -> dict:
    obj = {"object": "invoice", "id": "in_1", "currency": currency, "status": status, "amount_paid": paid,
           "total": total, "amount_due": due, "subtotal": subtotal, "total_excluding_tax": total - tax,
           "total_taxes": [{"amount": tax}] if tax else [], "tax": tax, "created": 1_700_000_000,
           "billing_reason": "subscription_cycle", "status_transitions": {"paid_at": 1_700_000_100},
           "parent": {"subscription_details": {"subscription": "sub_1"}}, "subscription": "sub_1"}
    if balances is not None:
        obj["starting_balance"], obj["ending_balance"] = balances
    return obj


small = st.integers(-10**9, 10**9)


@SETTINGS
@given(st.sampled_from(CURRENCIES), small, small, small, small, small, st.none() | st.tuples(small, small),
       st.sampled_from(["paid", "open", "draft"]), st.sampled_from([CURRENT_API_VERSION, LEGACY_API_VERSION]))
def test_invoice_amounts_as_before(currency, paid, total, due, subtotal, tax, balances, status, version):
    amounts = invoice_amounts(invoice(currency, paid, total, due, subtotal, tax, balances, status), version)
    expected = {"amount_paid": plain_money(paid, currency), "total": plain_money(total, currency),
                "amount_due": plain_money(due, currency), "subtotal": plain_money(subtotal, currency),
                "tax": plain_money(tax, currency)}
    if balances is not None:
        expected["amount_from_credit"] = plain_money(max(balances[1] - balances[0], 0), currency)
    else:
        expected["amount_from_credit"] = plain_money(max(total - due, 0), currency)
    base = expected["amount_paid"] if status == "paid" or expected["amount_paid"] > 0 else expected["total"]
    excluding = Decimal(0) if total < 0 else base - expected["tax"]  # a negative total is a credit
    expected["amount_excluding_tax"] = Decimal("0.00") if excluding < 0 else excluding.quantize(CENT, ROUND_HALF_UP)
    for name, value in expected.items():
        assert (getattr(amounts, name), str(getattr(amounts, name))) == (value, str(value)), name
    assert amounts.clamped is (excluding < 0)
    assert amounts.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


class Seconds(int):
    pass


class Id(str):
    pass


class Flag(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize("value", [1_700_000_000, 0, -86400, 1.7e9, 1.5, True, False, Seconds(5), Flag.ONE,
                                   None, "1700000000", 10**20, float("nan"), float("inf"), 1e400])
def test_times_as_before(value):
    def plain(v):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        try:
            return datetime.fromtimestamp(int(v), tz=UTC)
        except (OverflowError, OSError, ValueError):  # no calendar holds it: no time
            return None

    assert outcome(readers.timestamp, value) == outcome(plain, value)


@pytest.mark.parametrize("value", [5, -5, 0, True, False, Flag.ONE, Seconds(7), "12", "-3", "1.5", "", None, 2.0])
def test_ints_as_before(value):
    plain = None if isinstance(value, bool) else value if isinstance(value, int) else (
        int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else None)
    got = readers._int(value)
    assert got == plain and type(got) is type(plain)


@pytest.mark.parametrize("value", ["cus_1", "", Id("cus_2"), Id(""), {"id": "cus_3"}, {"id": ""},
                                   OrderedDict(id="cus_4"), MappingProxyType({"id": "cus_5"}), {}, 5, None])
def test_ids_and_mappings_as_before(value):
    inner = value.get("id") if isinstance(value, dict | OrderedDict | MappingProxyType) else value
    assert readers._id_of(value) == (inner if isinstance(inner, str) and inner else None)
    if isinstance(value, dict | MappingProxyType):
        assert readers._dict(value) is value
    else:
        assert readers._dict(value) == {}


def test_a_negative_total_below_a_cent_is_a_credit():
    """Found by the property above: -1 fils (KWD, three decimals) rounds to -0.00, and is still a
    credit — nothing earned, nothing clamped, no negative zero."""
    for status in ("paid", "open"):
        amounts = invoice_amounts(invoice("kwd", 0, -1, 0, 0, 5 if status == "paid" else 0, None, status),
                                  CURRENT_API_VERSION)
        assert (str(amounts.amount_excluding_tax), amounts.clamped) == ("0.00", False)
