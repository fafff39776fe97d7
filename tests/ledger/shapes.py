"""One account's life at Stripe, hand-written in the shape each API version sends it (DOMAIN §3).

`story(label)` gives the same events (same ids, times and amounts) as an account pinned to
`label` receives them, so a reader can be checked against each label's current-shape twin. The
story: a Swiss customer (8.1 % VAT) subscribes to Standard (49.00 EUR a month), renews, upgrades
to Premium (149.00), takes a second seat, fails a payment once and recovers, gets a partial
refund with its credit note, schedules a downgrade and drops it twice (released, then
canceled), has a one-off invoice voided, cancels at period end, is deleted.

Shape facts, with where they were seen (written from those facts, nothing copied):
- 2016-07-06 (dj-stripe `tests/__init__.py` at its 2017 commits, API 2016-03-07): the event's
  `request` is a string; a subscription has a top-level `plan` object and `quantity` and no
  `items`; an invoice has `date` (no `created`), `closed`, `forgiven`, `paid`, `amount_due`,
  `charge`, `subscription`, `tax`, `tax_percent`, no `status` nor `amount_paid` (2018-05-21,
  as the one reader's docstring has it too); its lines carry `plan` and
  `type: "subscription"`; a customer has `account_balance`, `business_vat_id`, `sources`.
- 2017-05-25 (Stripe changelog): `request` becomes `{"id", "idempotency_key"}`, and an array
  in `previous_attributes` is rendered whole (before, only its changed elements).
- 2017-08-15 (shared/stripe/localstripe-generated-events.json): items carry `plan` only, the
  subscription keeps `plan`/`quantity` and its period at the top level.
- 2018-08-23 (changelog): `business_vat_id` → `tax_info` `{tax_id, type}`; 2019-12-03:
  `tax_info` removed for `tax_ids`. 2018-11-08: `closed` → `auto_advance`, `forgiven` →
  status `uncollectible`. 2019-03-14: invoice `date` → `created`, `finalized_at` moves into
  `status_transitions`. 2019-10-17: `account_balance` → `balance`, `billing` →
  `collection_method`, a subscription's `start` → `start_date`.
- 2020-08-27 (stripe/openapi `openapi/spec3.json` at 3daaba75 vs 92265b47, changelog): phases
  `plans` → `items`; the subscription's top-level `plan`/`quantity` are gone; customers no
  longer include `tax_ids` (changes come as `customer.tax_id.*` events).
- 2022-11-15 (changelog): charges no longer include `refunds`.
- 2024-06-20 and 2025-02-24.acacia (stripe/openapi `openapi/fixtures3.json` at f7bafae7,
  b819eedc): items carry `plan` and `price`, no period; invoices have `charge`, `paid`,
  `payment_intent`, `subscription`, `tax`, `total_tax_amounts`; lines `price`, `plan`,
  `proration`, `subscription`, `tax_amounts`, `type`; charges `invoice`; credit notes `refund`,
  `tax_amounts`.
- 2025-03-31.basil (fixtures3.json at 1ef159c3, the basil changelog): items carry
  `current_period_start/end`; invoices `parent.subscription_details`, `total_taxes`, `payments`,
  no `charge`/`paid`/`tax`; lines `parent.subscription_item_details` and
  `pricing.price_details`, `taxes`; charges lose `invoice`; credit notes `refunds`,
  `total_taxes`; a renewal's `previous_attributes` names the items (their period changed).
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from backoffice.demo.stripe_shapes import label_date, shape_of
from backoffice.ledger import readers

CURRENT = "2026-10-28.endive"
LABELS = ("2016-07-06", "2017-08-15", "2018-09-24", "2019-12-03", "2020-08-27", "2020-08-27; orders_beta=v3",
          "2022-11-15", "2024-06-20", "2025-03-31.basil", "2025-04-30.basil", CURRENT, "2026-11-18.endive")

ACCOUNT = "acc-shapes"
CUS = "cus_Qx4TfR8kLm2Ns1"
PM = "pm_1Qx4Tg2eZvKYlo2CbX9aLm3N"
TXI = "txi_1Qx4Th2eZvKYlo2CvT5kP0aZ"
SUB = "sub_1Qx4Ti2eZvKYlo2C7hWpRr2D"
SI = "si_Qx4TiAbCdEfGh1"
SCHED_1 = "sub_sched_1Qx9aa2eZvKYlo2CSq1XyZ0w"
SCHED_2 = "sub_sched_1QyCbb2eZvKYlo2CHf4PqL7e"
STANDARD = ("standard-monthly-eur", "prod_QxStandardPlan", "Standard", 4900)
PREMIUM = ("premium-monthly-eur", "prod_QxPremiumPlan0", "Premium", 14900)
VAT_ID = "CHE-123.456.789 MWST"
RATE = "txr_1Qx4Sz2eZvKYlo2CvatCH81"


def ts(month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> int:
    return int(datetime(2026, month, day, hour, minute, second, tzinfo=UTC).timestamp())


def vat(amount: int) -> int:
    """8.1 % of an amount in cents, half up."""
    return (amount * 81 + 500) // 1000


PRICES_CREATED = int(datetime(2025, 11, 3, 14, 0, tzinfo=UTC).timestamp())
PERIODS = {  # the subscription's periods: start of each month's cycle
    1: (ts(1, 5, 9, 1), ts(2, 5, 9, 1)),
    2: (ts(2, 5, 9, 1), ts(3, 5, 9, 1)),
    3: (ts(3, 5, 9, 1), ts(4, 5, 9, 1)),
}


class Shape:
    """What one label's payloads look like: the shape and the era-specific details within it."""

    def __init__(self, label: str):
        self.label = label
        self.date = label_date(label)
        self.shape = shape_of(label)
        self.old = self.shape != "2025"

    def before(self, date: str) -> bool:
        return self.date < date


# -- catalog ------------------------------------------------------------------------------------
def price_obj(s: Shape, plan: tuple[str, str, str, int]) -> dict[str, Any]:
    price_id, product, name, amount = plan
    return {"id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
            "created": PRICES_CREATED, "currency": "eur", "custom_unit_amount": None, "livemode": False,
            "lookup_key": None, "metadata": {}, "nickname": name, "product": product,
            "recurring": {"aggregate_usage": None, "interval": "month", "interval_count": 1,
                          "trial_period_days": None, "usage_type": "licensed"}
            | ({"meter": None} if not s.old else {}),
            "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
            "unit_amount": amount, "unit_amount_decimal": str(amount)}


def plan_obj(s: Shape, plan: tuple[str, str, str, int]) -> dict[str, Any]:
    price_id, product, name, amount = plan
    obj = {"id": price_id, "object": "plan", "active": True, "aggregate_usage": None, "amount": amount,
           "amount_decimal": str(amount), "billing_scheme": "per_unit", "created": PRICES_CREATED,
           "currency": "eur", "interval": "month", "interval_count": 1, "livemode": False, "metadata": {},
           "nickname": name, "product": product, "tiers_mode": None, "transform_usage": None,
           "trial_period_days": None, "usage_type": "licensed"}
    if s.before("2018-02-05"):  # plans were named themselves before products held the name
        obj.update(name=name, statement_descriptor=None)
    return obj


# -- envelope ------------------------------------------------------------------------------------
def envelope(s: Shape, name: str, event_type: str, obj: dict, created: int,
             previous: dict | None = None) -> dict[str, Any]:
    """The event `name` of the story: its id is the same in every label (twins share it)."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    digest = hashlib.sha256(name.encode()).hexdigest()
    request_id = f"req_{digest[:14]}" if not event_type.startswith("invoice.") else None
    return {"id": f"evt_1Qx{digest[:21]}", "object": "event", "api_version": s.label,
            "created": created, "data": data, "livemode": False, "pending_webhooks": 1,
            "request": request_id if s.before("2017-05-25") else {"id": request_id, "idempotency_key": None},
            "type": event_type}


# -- customers -----------------------------------------------------------------------------------
ADDRESS = {"city": "Zürich", "country": "CH", "line1": "Bahnhofstrasse 12", "line2": None,
           "postal_code": "8001", "state": None}


def tax_id_obj(value: str = VAT_ID, status: str = "verified") -> dict[str, Any]:
    return {"id": TXI, "object": "tax_id", "country": "CH", "created": ts(1, 5, 8, 58), "customer": CUS,
            "livemode": False, "owner": {"customer": CUS, "type": "customer"}, "type": "ch_vat",
            "value": value, "verification": {"status": status, "verified_address": None,
                                             "verified_name": "Alpine Data AG" if status == "verified" else None}}


def customer_obj(s: Shape, *, address: dict | None = None, vat_id: str | None = VAT_ID,
                 default_pm: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": CUS, "object": "customer", "address": dict(address or ADDRESS), "created": ts(1, 5, 8, 55),
        "currency": "eur", "default_source": None, "delinquent": False, "description": None,
        "discount": None, "email": "billing@alpinedata.example",
        "invoice_prefix": "QX4TF8K2", "invoice_settings": {"custom_fields": None,
                                                           "default_payment_method": default_pm,
                                                           "footer": None, "rendering_options": None},
        "livemode": False, "metadata": {"account_id": ACCOUNT}, "name": "Alpine Data AG",
        "next_invoice_sequence": 4, "phone": None, "preferred_locales": ["de"], "shipping": None,
        "tax_exempt": "none", "test_clock": None,
    }
    obj["account_balance" if s.before("2019-10-17") else "balance"] = 0
    if s.before("2018-08-23"):
        obj["business_vat_id"] = vat_id
    elif s.before("2019-12-03"):
        obj["tax_info"] = {"tax_id": vat_id, "type": "vat"} if vat_id else None
        obj["tax_info_verification"] = {"status": "verified", "verified_name": "Alpine Data AG"} if vat_id else None
    elif s.before("2020-08-27"):
        data = [tax_id_obj(vat_id)] if vat_id else []
        obj["tax_ids"] = {"object": "list", "data": data, "has_more": False, "total_count": len(data),
                          "url": f"/v1/customers/{CUS}/tax_ids"}
    if s.before("2020-08-27"):  # included until 2020-08-27, on request after
        obj["sources"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                          "url": f"/v1/customers/{CUS}/sources"}
        obj["subscriptions"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                                "url": f"/v1/customers/{CUS}/subscriptions"}
    return obj


def tax_previous(s: Shape) -> dict[str, Any]:
    """What a customer.updated names when the VAT id was added, before tax ids had their events."""
    if s.before("2018-08-23"):
        return {"business_vat_id": None}
    if s.before("2019-12-03"):
        return {"tax_info": None, "tax_info_verification": None}
    return {"tax_ids": {"data": [], "total_count": 0}}


def payment_method_obj() -> dict[str, Any]:
    return {"id": PM, "object": "payment_method",
            "billing_details": {"address": dict(ADDRESS), "email": "billing@alpinedata.example",
                                "name": "Alpine Data AG", "phone": None},
            "card": {"brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                                 "cvc_check": "pass"},
                     "country": "CH", "exp_month": 8, "exp_year": 2029, "fingerprint": "Xt5EWLLDS7FJjR1c",
                     "funding": "credit", "last4": "4242", "networks": {"available": ["visa"], "preferred": None},
                     "three_d_secure_usage": {"supported": True}, "wallet": None},
            "created": ts(1, 5, 8, 57), "customer": CUS, "livemode": False, "metadata": {}, "type": "card"}


# -- subscriptions -------------------------------------------------------------------------------
def item_obj(s: Shape, plan: tuple, quantity: int, period: tuple[int, int]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": SI, "object": "subscription_item", "billing_thresholds": None,
                            "created": PERIODS[1][0], "metadata": {}, "quantity": quantity,
                            "subscription": SUB, "tax_rates": []}
    if s.shape == "2016" and s.before("2019-12-03"):
        item["plan"] = plan_obj(s, plan)  # events written before prices existed
    else:
        item["plan"], item["price"] = plan_obj(s, plan), price_obj(s, plan)
    if not s.old:
        item.update(current_period_start=period[0], current_period_end=period[1], discounts=[])
    return item


def items_obj(s: Shape, plan: tuple, quantity: int, period: tuple[int, int]) -> dict[str, Any]:
    return {"object": "list", "data": [item_obj(s, plan, quantity, period)], "has_more": False,
            "total_count": 1, "url": f"/v1/subscription_items?subscription={SUB}"}


def subscription_obj(s: Shape, plan: tuple, *, quantity: int = 1, period: tuple[int, int] = PERIODS[1],
                     status: str = "active", cancel: bool = False, reason: str | None = None,
                     latest_invoice: str | None = None, schedule: str | None = None) -> dict[str, Any]:
    canceled = status == "canceled"
    obj: dict[str, Any] = {
        "id": SUB, "object": "subscription", "application_fee_percent": None,
        "billing_cycle_anchor": PERIODS[1][0], "cancel_at": period[1] if cancel else None,
        "cancel_at_period_end": cancel, "canceled_at": ts(3, 20) if cancel or canceled else None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": reason},
        "collection_method": "charge_automatically", "created": PERIODS[1][0], "currency": "eur",
        "customer": CUS, "days_until_due": None, "default_payment_method": PM, "default_tax_rates": [],
        "discount": None, "ended_at": ts(4, 5, 9, 1) if canceled else None, "latest_invoice": latest_invoice,
        "livemode": False, "metadata": {"account_id": ACCOUNT}, "pause_collection": None,
        "pending_update": None, "schedule": schedule, "status": status, "trial_end": None, "trial_start": None,
    }
    if s.before("2019-10-17"):
        obj["start"] = PERIODS[1][0]
        obj["billing"] = obj.pop("collection_method")
    else:
        obj["start_date"] = PERIODS[1][0]
    if not (s.shape == "2016" and s.before("2017-08-15")):  # items arrived with multi-plan subscriptions
        obj["items"] = items_obj(s, plan, quantity, period)
    if s.shape == "2016":
        obj["plan"], obj["quantity"], obj["tax_percent"] = plan_obj(s, plan), quantity, None
    if s.old:
        obj["current_period_start"], obj["current_period_end"] = period
    else:
        obj["billing_mode"] = {"type": "classic"}
    return obj


def plan_change_previous(s: Shape, plan: tuple, quantity: int, period: tuple[int, int],
                         **extra: Any) -> dict[str, Any]:
    """previous_attributes of a change of plan or seats: the items before, and in 2016 the
    subscription's own `plan`/`quantity` too."""
    previous: dict[str, Any] = {}
    if "items" in subscription_obj(s, plan):
        previous["items"] = items_obj(s, plan, quantity, period)
    if s.shape == "2016":
        previous["plan"], previous["quantity"] = plan_obj(s, plan), quantity
    return previous | extra


def renewal_previous(s: Shape, plan: tuple, quantity: int, period: tuple[int, int],
                     latest_invoice: str) -> dict[str, Any]:
    """A new period: before basil the subscription's period changed, from basil its items'."""
    if s.old:
        return {"current_period_end": period[1], "current_period_start": period[0], "latest_invoice": latest_invoice}
    return {"items": items_obj(s, plan, quantity, period), "latest_invoice": latest_invoice}


def schedule_obj(s: Shape, sched_id: str, phases: list[tuple[tuple, int, int, int]], *, status: str = "active",
                 created: int) -> dict[str, Any]:
    """`phases`: (plan, quantity, start, end)."""
    rendered = []
    for plan, quantity, start, end in phases:
        phase: dict[str, Any] = {"add_invoice_items": [], "application_fee_percent": None,
                                 "billing_cycle_anchor": None, "billing_thresholds": None,
                                 "collection_method": None, "coupon": None, "currency": "eur",
                                 "default_payment_method": None,
                                 "default_tax_rates": [], "end_date": end, "invoice_settings": None,
                                 "proration_behavior": "none", "start_date": start, "trial_end": None}
        line = {"billing_thresholds": None, "plan": plan[0], "quantity": quantity, "tax_rates": []}
        if s.shape == "2016":
            phase["plans"] = [line]
            phase["tax_percent"] = None
        else:
            phase["items"] = [line | {"price": plan[0]}]
        if not s.old:
            del phase["coupon"]
            phase["discounts"] = []
            phase["items"][0] |= {"discounts": [], "metadata": {}}
        rendered.append(phase)
    ended = status in ("released", "canceled")
    return {"id": sched_id, "object": "subscription_schedule", "canceled_at": ts(3, 18) if status == "canceled" else None,
            "completed_at": None, "created": created,
            "current_phase": None if ended else {"end_date": phases[0][3], "start_date": phases[0][2]},
            "customer": CUS, "default_settings": {"billing_thresholds": None,
                                                  "collection_method": "charge_automatically",
                                                  "default_payment_method": None, "invoice_settings": None},
            "end_behavior": "release", "livemode": False, "metadata": {}, "phases": rendered,
            "released_at": ts(3, 12) if status == "released" else None,
            "released_subscription": SUB if status == "released" else None, "status": status,
            "subscription": None if status == "released" else SUB}


# -- invoices ------------------------------------------------------------------------------------
def _tax_entry(s: Shape, amount: int, taxable: int) -> dict[str, Any]:
    if s.old:
        return {"amount": amount, "inclusive": False, "tax_rate": RATE, "taxability_reason": "standard_rated",
                "taxable_amount": taxable}
    return {"amount": amount, "tax_behavior": "exclusive", "tax_rate_details": {"tax_rate": RATE},
            "taxability_reason": "standard_rated", "taxable_amount": taxable, "type": "tax_rate_details"}


def line_obj(s: Shape, invoice_id: str, n: int, plan: tuple, quantity: int, amount: int,
             period: tuple[int, int], proration: bool = False) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": f"il_1Qx{n:04d}2eZvKYlo2CLine01", "object": "line_item", "amount": amount, "currency": "eur",
        "description": f"{quantity} × {plan[2]} (at {plan[3] / 100:.2f} EUR / month)", "discount_amounts": [],
        "discountable": True, "discounts": [], "invoice": invoice_id, "livemode": False, "metadata": {},
        "period": {"end": period[1], "start": period[0]}, "quantity": quantity,
    }
    if s.before("2019-03-14"):
        line["id"] = SUB if not proration else line["id"]  # old subscription lines were named by it
    if s.old:
        line.update(proration=proration, subscription=SUB, subscription_item=SI, type="subscription",
                    tax_amounts=[_tax_entry(s, vat(amount), amount)], plan=plan_obj(s, plan))
        if s.shape == "2020":
            line["price"] = price_obj(s, plan)
    else:
        line.update(parent={"invoice_item_details": None, "type": "subscription_item_details",
                            "subscription_item_details": {"invoice_item": None, "proration": proration,
                                                          "proration_details": {"credited_items": None},
                                                          "subscription": SUB, "subscription_item": SI}},
                    pretax_credit_amounts=[],
                    pricing={"price_details": {"price": plan[0], "product": plan[1]}, "type": "price_details",
                             "unit_amount_decimal": str(plan[3])},
                    subtotal=amount, taxes=[_tax_entry(s, vat(amount), amount)])
    return line


def invoice_obj(s: Shape, invoice_id: str, n: int, *, reason: str, lines: list[dict], created: int,
                status: str, attempt: int, paid_at: int | None = None, charge: str | None = None,
                intent: str | None = None, next_attempt: int | None = None,
                voided_at: int | None = None) -> dict[str, Any]:
    subtotal = sum(line["amount"] for line in lines)
    tax = sum(vat(line["amount"]) for line in lines)
    total = subtotal + tax
    paid = status == "paid"
    finalized = None if status == "draft" else created + 3600
    obj: dict[str, Any] = {
        "id": invoice_id, "object": "invoice", "account_country": "CH", "account_name": "Backoffice Demo Platform",
        "amount_due": total, "amount_paid": total if paid else 0, "amount_remaining": 0 if paid else total,
        "attempt_count": attempt, "attempted": attempt > 0, "billing_reason": reason,
        "collection_method": "charge_automatically", "currency": "eur", "customer": CUS,
        "customer_email": "billing@alpinedata.example", "customer_name": "Alpine Data AG",
        "customer_tax_exempt": "none", "default_payment_method": None, "description": None,
        "ending_balance": 0 if status != "draft" else None, "footer": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_1Qx/test_{invoice_id}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/acct_1Qx/test_{invoice_id}/pdf",
        "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                  "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False, "metadata": {}, "next_payment_attempt": next_attempt,
        "number": f"QX4TF8K2-{n:04d}", "period_end": created, "period_start": created - 30 * 86400,
        "receipt_number": None, "starting_balance": 0, "statement_descriptor": None, "subtotal": subtotal,
        "total": total, "webhooks_delivered_at": created + 2,
    }
    if s.before("2018-05-21"):  # amount_due alone said what was owed; `paid` whether it was
        del obj["amount_paid"], obj["amount_remaining"]
    if s.before("2019-10-17"):
        obj["billing"] = obj.pop("collection_method")
    if s.before("2019-03-14"):
        obj["date"] = created
        obj["finalized_at"] = finalized
    else:
        obj["created"] = created
        obj["status_transitions"] = {"finalized_at": finalized, "marked_uncollectible_at": None,
                                     "paid_at": paid_at, "voided_at": voided_at}
    if s.before("2018-11-08"):
        obj["closed"] = paid or status == "void"
        obj["forgiven"] = False
    else:
        obj["auto_advance"] = status in ("draft", "open")
    if not s.before("2017-08-15"):  # 2016-era invoices had no status yet
        obj["status"] = status
    if s.old:
        obj.update(charge=charge, paid=paid, payment_intent=intent, subscription=SUB,
                   tax=tax, total_tax_amounts=[_tax_entry(s, tax, subtotal)])
        if s.before("2019-03-14"):
            obj["tax_percent"] = None
    else:
        obj.update(parent={"quote_details": None, "type": "subscription_details",
                           "subscription_details": {"metadata": {"account_id": ACCOUNT}, "subscription": SUB}},
                   subtotal_excluding_tax=subtotal, total_excluding_tax=subtotal,
                   total_taxes=[_tax_entry(s, tax, subtotal)],
                   payments={"object": "list", "has_more": False, "url": f"/v1/invoices/{invoice_id}/payments",
                             "data": [] if not paid else [{
                                 "id": f"inpay_1Qx{n:04d}2eZvKYlo2C", "object": "invoice_payment",
                                 "amount_paid": total, "amount_requested": total, "created": paid_at,
                                 "currency": "eur", "invoice": invoice_id, "is_default": True, "livemode": False,
                                 "payment": {"payment_intent": intent, "type": "payment_intent"}, "status": "paid",
                                 "status_transitions": {"canceled_at": None, "paid_at": paid_at}}]})
    return obj


def charge_obj(s: Shape, charge_id: str, intent: str, invoice_id: str, amount: int, refunded: int,
               created: int, refund_id: str, refund_created: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": refunded, "balance_transaction": "txn_3Qx4Tj2eZvKYlo2C0bT1aL5e",
        "billing_details": {"address": dict(ADDRESS), "email": "billing@alpinedata.example",
                            "name": "Alpine Data AG", "phone": None},
        "captured": True, "created": created, "currency": "eur", "customer": CUS,
        "description": "Subscription creation", "disputed": False, "failure_code": None, "failure_message": None,
        "livemode": False, "metadata": {}, "paid": True, "payment_intent": intent, "payment_method": PM,
        "receipt_email": "billing@alpinedata.example", "refunded": refunded == amount, "status": "succeeded",
    }
    if s.old:
        obj["invoice"] = invoice_id
    if s.before("2022-11-15"):
        obj["refunds"] = {"object": "list", "has_more": False, "total_count": 1,
                          "url": f"/v1/charges/{charge_id}/refunds",
                          "data": [{"id": refund_id, "object": "refund", "amount": refunded, "charge": charge_id,
                                    "created": refund_created, "currency": "eur", "metadata": {},
                                    "payment_intent": intent, "reason": "requested_by_customer",
                                    "status": "succeeded"}]}
    return obj


def credit_note_obj(s: Shape, cn_id: str, invoice_id: str, line_id: str, ex_tax: int, created: int,
                    refund_id: str) -> dict[str, Any]:
    tax = vat(ex_tax)
    line: dict[str, Any] = {"id": "cnli_1Qx4Tk2eZvKYlo2CcNl1", "object": "credit_note_line_item", "amount": ex_tax,
                            "description": "Standard (half a month)", "discount_amount": 0,
                            "discount_amounts": [], "invoice_line_item": line_id, "livemode": False,
                            "quantity": 1, "tax_rates": [], "type": "invoice_line_item", "unit_amount": None,
                            "unit_amount_decimal": None}
    obj: dict[str, Any] = {
        "id": cn_id, "object": "credit_note", "amount": ex_tax + tax, "created": created, "currency": "eur",
        "customer": CUS, "customer_balance_transaction": None, "discount_amount": 0, "discount_amounts": [],
        "invoice": invoice_id, "livemode": False, "memo": None, "metadata": {}, "number": "QX4TF8K2-0001-CN-01",
        "out_of_band_amount": None, "pdf": f"https://pay.stripe.com/credit_notes/acct_1Qx/test_{cn_id}/pdf",
        "reason": "requested_by_customer", "status": "issued", "subtotal": ex_tax, "total": ex_tax + tax,
        "type": "post_payment", "voided_at": None,
        "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                  "url": f"/v1/credit_notes/{cn_id}/lines"},
    }
    if not s.before("2020-08-27"):
        obj["effective_at"] = created
    if s.old:
        obj["refund"] = refund_id
        obj["tax_amounts"] = [_tax_entry(s, tax, ex_tax)]
        line["tax_amounts"] = [_tax_entry(s, tax, ex_tax)]
    else:
        obj["refunds"] = [{"amount_refunded": ex_tax + tax, "refund": refund_id, "type": "refund"}]
        obj["total_taxes"] = [_tax_entry(s, tax, ex_tax)]
        obj["total_excluding_tax"] = ex_tax
        line["taxes"] = [_tax_entry(s, tax, ex_tax)]
    return obj


# -- the story -----------------------------------------------------------------------------------
IN_1, IN_2, IN_3, IN_5 = (f"in_1Qx{n}Ab2eZvKYlo2CInv0{n}" for n in (1, 2, 3, 5))
CH_1, CH_2, CH_4 = (f"ch_3Qx{n}Ab2eZvKYlo2C0Chg{n}" for n in (1, 2, 4))
PI_1, PI_2, PI_4 = (f"pi_3Qx{n}Ab2eZvKYlo2C0Chg{n}" for n in (1, 2, 4))
RE_1 = "re_3Qx1Ab2eZvKYlo2C0Rfd1"
CN_1 = "cn_1Qx1Ab2eZvKYlo2CCrN01"


def story(label: str) -> dict[str, dict]:
    """The events of the story as an account pinned to `label` receives them, by name (the
    name is the same in every label: the twins of a name share id, time and money)."""
    s = Shape(label)
    events: dict[str, dict] = {}

    def add(name: str, event_type: str, obj: dict, created: int, previous: dict | None = None) -> None:
        events[name] = envelope(s, name, event_type, obj, created, previous)

    catalog_type = "plan" if s.shape == "2016" else "price"
    catalog_obj = plan_obj if s.shape == "2016" else price_obj
    add("catalog.standard", f"{catalog_type}.created", catalog_obj(s, STANDARD), PRICES_CREATED)
    add("catalog.premium", f"{catalog_type}.created", catalog_obj(s, PREMIUM), PRICES_CREATED + 1)

    add("customer.created", "customer.created", customer_obj(s, vat_id=None), ts(1, 5, 8, 55))
    if s.before("2020-08-27"):
        add("customer.updated.tax", "customer.updated", customer_obj(s), ts(1, 5, 8, 58), tax_previous(s))
    add("customer.tax_id.created", "customer.tax_id.created", tax_id_obj(status="pending"), ts(1, 5, 8, 58, 1))
    add("customer.tax_id.updated", "customer.tax_id.updated", tax_id_obj(), ts(1, 5, 8, 58, 30),
        {"verification": {"status": "pending", "verified_name": None}})
    add("payment_method.attached", "payment_method.attached", payment_method_obj(), ts(1, 5, 8, 59))
    add("customer.updated.default_pm", "customer.updated", customer_obj(s, default_pm=PM), ts(1, 5, 8, 59, 2),
        {"invoice_settings": {"default_payment_method": None}})

    # Subscribed to Standard, paid at once.
    p1, p2, p3 = PERIODS[1], PERIODS[2], PERIODS[3]
    line_1 = line_obj(s, IN_1, 1, STANDARD, 1, 4900, p1)
    draft = invoice_obj(s, IN_1, 1, reason="subscription_create", lines=[line_1], created=p1[0], status="draft",
                        attempt=0)
    add("invoice.created", "invoice.created", draft, p1[0] + 1)
    add("customer.subscription.created", "customer.subscription.created",
        subscription_obj(s, STANDARD, latest_invoice=IN_1), p1[0] + 2)
    add("invoice.finalized", "invoice.finalized",
        invoice_obj(s, IN_1, 1, reason="subscription_create", lines=[line_1], created=p1[0], status="open",
                    attempt=0), p1[0] + 3)
    paid_1 = invoice_obj(s, IN_1, 1, reason="subscription_create", lines=[line_1], created=p1[0], status="paid",
                         attempt=1, paid_at=p1[0] + 4, charge=CH_1, intent=PI_1)
    add("invoice.paid.create", "invoice.paid", paid_1, p1[0] + 4)
    add("invoice.payment_succeeded.create", "invoice.payment_succeeded", paid_1, p1[0] + 5)

    # The first renewal.
    line_2 = line_obj(s, IN_2, 2, STANDARD, 1, 4900, p2)
    add("customer.subscription.updated.renewal", "customer.subscription.updated",
        subscription_obj(s, STANDARD, period=p2, latest_invoice=IN_2), p2[0] + 1,
        renewal_previous(s, STANDARD, 1, p1, IN_1))
    paid_2 = invoice_obj(s, IN_2, 2, reason="subscription_cycle", lines=[line_2], created=p2[0], status="paid",
                         attempt=1, paid_at=p2[0] + 3700, charge=CH_2, intent=PI_2)
    add("invoice.payment_succeeded.cycle", "invoice.payment_succeeded", paid_2, p2[0] + 3700)
    add("invoice.paid.cycle", "invoice.paid", paid_2, p2[0] + 3701)

    # Half of the first month refunded (ex-VAT 24.50), with its credit note.
    add("charge.refunded", "charge.refunded",
        charge_obj(s, CH_1, PI_1, IN_1, paid_1["total"], 2450 + vat(2450), p1[0] + 4, RE_1, ts(2, 10)),
        ts(2, 10), {"amount_refunded": 0, "refunded": False})
    add("credit_note.created", "credit_note.created",
        credit_note_obj(s, CN_1, IN_1, line_1["id"], 2450, ts(2, 10, 9, 0, 5), RE_1), ts(2, 10, 9, 0, 5))

    # Upgrade to Premium mid-period, then a second seat.
    add("customer.subscription.updated.upgrade", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, period=p2, latest_invoice=IN_2), ts(2, 19),
        plan_change_previous(s, STANDARD, 1, p2))
    add("customer.subscription.updated.seats", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, quantity=2, period=p2, latest_invoice=IN_2), ts(2, 21),
        plan_change_previous(s, PREMIUM, 1, p2))

    # The March renewal fails once, then is recovered.
    line_3 = line_obj(s, IN_3, 3, PREMIUM, 2, 29800, p3)
    add("customer.subscription.updated.renewal_2", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, quantity=2, period=p3, latest_invoice=IN_3), p3[0] + 1,
        renewal_previous(s, PREMIUM, 2, p2, IN_2))
    add("invoice.payment_failed", "invoice.payment_failed",
        invoice_obj(s, IN_3, 3, reason="subscription_cycle", lines=[line_3], created=p3[0], status="open",
                    attempt=1, next_attempt=ts(3, 8, 10)), p3[0] + 3700)
    add("customer.subscription.updated.past_due", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, quantity=2, period=p3, status="past_due", latest_invoice=IN_3),
        p3[0] + 3702, {"status": "active"})
    add("invoice.updated", "invoice.updated",
        invoice_obj(s, IN_3, 3, reason="subscription_cycle", lines=[line_3], created=p3[0], status="open",
                    attempt=1, next_attempt=ts(3, 8, 10)) | {"footer": "Zahlbar innert 10 Tagen"},
        ts(3, 6), {"footer": None})
    paid_3 = invoice_obj(s, IN_3, 3, reason="subscription_cycle", lines=[line_3], created=p3[0], status="paid",
                         attempt=2, paid_at=ts(3, 8, 10), charge=CH_4, intent=PI_4)
    add("invoice.paid.recovered", "invoice.paid", paid_3, ts(3, 8, 10))
    add("invoice.payment_succeeded.recovered", "invoice.payment_succeeded", paid_3, ts(3, 8, 10, 0, 1))
    add("customer.subscription.updated.recovered", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, quantity=2, period=p3, latest_invoice=IN_3), ts(3, 8, 10, 0, 3),
        {"status": "past_due"})

    # A downgrade to Standard scheduled for the period end, released; then again, canceled.
    phase_now = (PREMIUM, 2, p3[0], p3[1])
    phase_next = (STANDARD, 2, p3[1], p3[1] + 30 * 86400)
    add("subscription_schedule.created", "subscription_schedule.created",
        schedule_obj(s, SCHED_1, [phase_now], created=ts(3, 10)), ts(3, 10))
    add("subscription_schedule.updated", "subscription_schedule.updated",
        schedule_obj(s, SCHED_1, [phase_now, phase_next], created=ts(3, 10)), ts(3, 10, 9, 0, 2),
        {"phases": schedule_obj(s, SCHED_1, [phase_now], created=ts(3, 10))["phases"]})
    add("subscription_schedule.released", "subscription_schedule.released",
        schedule_obj(s, SCHED_1, [phase_now, phase_next], status="released", created=ts(3, 10)), ts(3, 12))
    add("subscription_schedule.created.again", "subscription_schedule.created",
        schedule_obj(s, SCHED_2, [phase_now, phase_next], created=ts(3, 15)), ts(3, 15))
    add("subscription_schedule.canceled", "subscription_schedule.canceled",
        schedule_obj(s, SCHED_2, [phase_now, phase_next], status="canceled", created=ts(3, 15)), ts(3, 18))

    # A one-off invoice (an extra seat's setup) voided before payment.
    line_5 = line_obj(s, IN_5, 5, PREMIUM, 1, 14900, p3, proration=True)
    add("invoice.voided", "invoice.voided",
        invoice_obj(s, IN_5, 5, reason="subscription_update", lines=[line_5], created=ts(3, 19), status="void",
                    attempt=0, voided_at=ts(3, 19, 11)), ts(3, 19, 11))

    # Cancelled at period end, then ended; the customer deleted.
    add("customer.subscription.updated.cancel", "customer.subscription.updated",
        subscription_obj(s, PREMIUM, quantity=2, period=p3, cancel=True, reason="cancellation_requested",
                         latest_invoice=IN_3), ts(3, 20),
        {"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
         "cancellation_details": {"reason": None}})
    add("customer.subscription.deleted", "customer.subscription.deleted",
        subscription_obj(s, PREMIUM, quantity=2, period=p3, status="canceled", cancel=True,
                         reason="cancellation_requested", latest_invoice=IN_3), p3[1] + 5)
    add("customer.tax_id.deleted", "customer.tax_id.deleted", tax_id_obj(), p3[1] + 60)
    add("customer.deleted", "customer.deleted", customer_obj(s, default_pm=PM), p3[1] + 61)
    return events


# -- reading -------------------------------------------------------------------------------------
def _line(line: readers.PriceLine) -> tuple:
    return (line.price_id, line.plan_key, line.monthly_amount, line.currency, line.interval, line.quantity,
            line.metered)


def meaning(parsed: readers.ParsedEvent) -> dict:
    """What the classifier and the projections take from an event, whatever the shape says it
    with. From basil a renewal names its items in previous_attributes (their period changed);
    before, the subscription's period: unchanged items are no previous plan."""
    lines = [_line(line) for line in parsed.lines]
    previous = None if parsed.previous_lines is None else [_line(line) for line in parsed.previous_lines]
    return {
        "type": parsed.type, "created": parsed.created, "object_type": parsed.object_type,
        "object_id": parsed.object_id, "customer_id": parsed.customer_id,
        "subscription_id": parsed.subscription_id, "currency": parsed.currency, "status": parsed.status,
        "previous_status": parsed.previous_status, "cancel_at_period_end": parsed.cancel_at_period_end,
        "cancel_changed": parsed.cancel_changed,
        "previous_cancel_at_period_end": parsed.previous_cancel_at_period_end,
        "lines": lines, "previous_lines": None if previous == lines else previous,
        "current_period_end": parsed.current_period_end, "cancellation_reason": parsed.cancellation_reason,
        "schedule_phases": [([_line(line) for line in p.lines], p.currency, p.start, p.end)
                            for p in parsed.schedule_phases],
        "schedule_status": parsed.schedule_status,
        # Before basil a charge names its invoice; from basil only the invoice's payments link them.
        "invoice_id": parsed.invoice_id if parsed.object_type != "charge" else None,
        "billing_reason": parsed.billing_reason, "attempt_count": parsed.attempt_count,
        "charge_id": parsed.charge_id if parsed.object_type != "invoice" else None,
        "customer_touched": parsed.customer_touched,
    }
