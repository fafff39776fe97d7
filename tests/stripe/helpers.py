"""Signed, current-API-shaped Stripe events for tests.

Objects start from Stripe's own OpenAPI example objects (openapi_fixtures.json, MIT) and are
filled with a story's ids and amounts; envelopes are signed like Stripe signs them.
"""
from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import stripe

SECRET = "whsec_test"
API_VERSION = stripe.api_version  # what stripe 16.1 sends: 2026-10-28.endive
_FIXTURES = json.loads((Path(__file__).parent / "openapi_fixtures.json").read_text())["resources"]
_counter = itertools.count(1)


def fixture(resource: str) -> dict:
    return copy.deepcopy(_FIXTURES[resource])


def sign(body: bytes | str, secret: str = SECRET, timestamp: int | None = None) -> str:
    payload = body.decode() if isinstance(body, bytes) else body
    ts = int(time.time()) if timestamp is None else timestamp
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=ts)


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def deliver(client, event: dict | bytes, *, secret: str = SECRET, content_type: str = "application/json",
            signature: str | None = None):
    """POSTs an event to the real webhook endpoint, signed (unless a signature is given)."""
    body = event if isinstance(event, bytes) else encode(event)
    headers = {"Stripe-Signature": signature if signature is not None else sign(body, secret)}
    return client.post("/stripe/webhook", data=body, headers=headers, content_type=content_type)


def ts(value: str) -> int:
    """'2026-02-15' or '2026-02-15T10:00:00' (UTC) → a Unix timestamp."""
    dt = datetime.fromisoformat(value)
    return int(dt.replace(tzinfo=UTC).timestamp())


def envelope(event_type: str, obj: dict, created: int, *, previous_attributes: dict | None = None,
             event_id: str | None = None, api_version: str | None = API_VERSION) -> dict:
    data: dict = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or f"evt_test_{next(_counter):06d}",
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def price(price_id: str, amount_minor: int, *, interval: str = "month", currency: str = "eur",
          product: str | None = None, nickname: str | None = None) -> dict:
    obj = fixture("price")
    obj.update(id=price_id, unit_amount=amount_minor, unit_amount_decimal=str(amount_minor),
               currency=currency, product=product or f"prod_{price_id}", nickname=nickname,
               transform_quantity=None)
    obj["recurring"]["interval"] = interval
    return obj


def customer(customer_id: str, *, name: str = "Acme AG", email: str = "billing@acme.test",
             account_id: str | None = None, country: str = "CH") -> dict:
    obj = fixture("customer")
    obj.update(id=customer_id, name=name, email=email, discount=None,
               metadata={"account_id": account_id} if account_id else {})
    obj["address"].update(line1="Bahnhofstrasse 1", postal_code="8001", city="Zürich", country=country)
    return obj


def subscription(sub_id: str, customer_id: str, price_obj: dict, *, status: str = "active",
                 cancel_at_period_end: bool = False, period_end: int | None = None,
                 quantity: int = 1, created: int | None = None, latest_invoice: str | None = None,
                 cancellation_reason: str | None = None, schedule: str | None = None) -> dict:
    obj = fixture("subscription")
    item = obj["items"]["data"][0]
    item.update(id=f"si_{sub_id}", price=copy.deepcopy(price_obj), quantity=quantity, subscription=sub_id,
                current_period_end=period_end or 0, current_period_start=(period_end or 0) - 30 * 86400)
    item.pop("plan", None)
    obj["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
    obj.update(id=sub_id, customer=customer_id, status=status, cancel_at_period_end=cancel_at_period_end,
               currency=price_obj["currency"], latest_invoice=latest_invoice, schedule=schedule,
               created=created or 0, start_date=created or 0, cancel_at=None, canceled_at=None,
               ended_at=None, trial_end=None, trial_start=None, pending_update=None, transfer_data=None)
    obj["cancellation_details"]["reason"] = cancellation_reason
    return obj


def schedule(sched_id: str, customer_id: str, sub_id: str, phase_prices: list[str], *,
             status: str = "active") -> dict:
    obj = fixture("subscription_schedule")
    template = obj["phases"][0]
    phases = []
    for n, price_id in enumerate(phase_prices):
        phase = copy.deepcopy(template)
        phase["items"][0]["price"] = price_id
        phase["items"][0].pop("plan", None)
        phase["currency"] = "eur"
        phase["start_date"] = 1_700_000_000 + n * 30 * 86400
        phase["end_date"] = phase["start_date"] + 30 * 86400
        phases.append(phase)
    obj.update(id=sched_id, customer=customer_id, subscription=sub_id, phases=phases, status=status,
               released_subscription=None, canceled_at=None, completed_at=None, released_at=None)
    return obj


def invoice(invoice_id: str, customer_id: str, sub_id: str | None, *, amount_paid: int, total: int,
            tax: int = 0, billing_reason: str = "subscription_cycle", attempt_count: int = 1,
            status: str = "paid", currency: str = "eur", created: int | None = None,
            number: str | None = None, amount_due: int | None = None) -> dict:
    obj = fixture("invoice")
    obj.update(id=invoice_id, customer=customer_id, amount_paid=amount_paid, total=total,
               subtotal=total - tax, subtotal_excluding_tax=total - tax, total_excluding_tax=total - tax,
               amount_due=total if amount_due is None else amount_due,
               amount_remaining=0 if status == "paid" else total,
               billing_reason=billing_reason, attempt_count=attempt_count, attempted=True,
               status=status, currency=currency, created=created or 0, number=number or f"INV-{invoice_id}",
               hosted_invoice_url=f"https://invoice.stripe.test/{invoice_id}",
               invoice_pdf=f"https://invoice.stripe.test/{invoice_id}.pdf",
               shipping_cost=None, from_invoice=None, last_finalization_error=None, amount_overpaid=0,
               total_taxes=[{"amount": tax, "tax_behavior": "exclusive", "tax_rate_details": None,
                             "taxability_reason": "standard_rated", "taxable_amount": total - tax,
                             "type": "tax_rate_details"}] if tax else [])
    obj["status_transitions"]["paid_at"] = created if status == "paid" else None
    obj["parent"] = {"quote_details": None, "type": "subscription_details",
                     "subscription_details": {"metadata": {}, "subscription": sub_id}} if sub_id else None
    for line in obj["lines"]["data"]:
        line.update(invoice=invoice_id, amount=total - tax, currency=currency)
    return obj


def charge(charge_id: str, customer_id: str, *, amount: int, amount_refunded: int = 0,
           currency: str = "eur", invoice_id: str | None = None) -> dict:
    obj = fixture("charge")
    obj.update(id=charge_id, customer=customer_id, amount=amount, amount_captured=amount,
               amount_refunded=amount_refunded, refunded=amount_refunded >= amount, currency=currency,
               source=None, transfer_data=None)
    if invoice_id:
        obj["invoice"] = invoice_id  # older API versions; the current shape links via payments
    return obj


def credit_note(cn_id: str, customer_id: str, invoice_id: str, *, total: int, currency: str = "eur",
                created: int | None = None) -> dict:
    obj = fixture("credit_note")
    obj.update(id=cn_id, customer=customer_id, invoice=invoice_id, total=total, amount=total, subtotal=total,
               currency=currency, created=created or 0, effective_at=created or 0, voided_at=None,
               status="issued", pdf=f"https://credit.stripe.test/{cn_id}.pdf", shipping_cost=None,
               refunds=[])
    return obj


def payment_method(pm_id: str, customer_id: str) -> dict:
    obj = fixture("payment_method")
    obj.update(id=pm_id, customer=customer_id)
    return obj
