"""A Stripe simulator: signed, current-API-shaped Stripe events for realistic account life stories.

Objects follow Stripe's current API (`2026-10-28.endive`, what stripe 16.1 sends): subscription
items carry their `price` and `current_period_*`, invoices link their subscription through
`parent.subscription_details`, taxes sit in `total_taxes`. Events are wrapped the way Stripe wraps
them (`data.object`, `data.previous_attributes` on `*.updated`). `StripeSimulator(shape=...)`
renders the same stories as accounts on older API versions receive them (see stripe_shapes).

Deterministic: a story draws only from the `random.Random` it is given and from its start and end
times, so the same seed gives the same event ids, bodies and `created` timestamps. Within one
story every event is at least one second after the one before, so "order by created" is the order
Stripe produced them in.

Delivery goes through the real endpoint, `POST /stripe/webhook`, signed with Stripe's v1 scheme
(HMAC-SHA256 over "t.body"); the signature time is the delivery time, while `created` may be
long past. This module never imports `stripe`: the gateway in stripe is the one that does.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import random
import string
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from backoffice.demo import stripe_shapes

API_VERSION = "2026-10-28.endive"
DEMO_WEBHOOK_SECRET = "whsec_backoffice_demo_0123456789abcdef"
WEBHOOK_PATH = "/stripe/webhook"
PLATFORM_COUNTRY = "CH"
PLATFORM_NAME = "Backoffice Demo Platform"

# plan key, name, monthly price in minor units; yearly prices are 10 × monthly (two months free).
PLANS: tuple[tuple[str, str, int], ...] = (
    ("standard", "Standard", 4900),
    ("premium", "Premium", 14900),
    ("business", "Business", 29900),
)
FREE_PLAN = "free"
# The seller is Swiss (DOMAIN §6): Swiss customers pay 8.1 % VAT, foreign ones none
# (reverse charge with a VAT id, export without).
DOMESTIC_VAT = {"CH": Decimal("8.1"), "LI": Decimal("8.1")}
TRIAL_DAYS = 14
RETRY_DAYS = (3, 5, 7)  # Smart Retries: attempts 2, 3 and 4 after the first failure

_ALPHANUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Price:
    id: str
    plan: str
    name: str
    product: str
    unit_amount: int  # minor units, per interval
    interval: str  # "month" | "year"
    currency: str  # lower case, as Stripe writes it
    created: int

    @property
    def monthly_amount(self) -> Decimal:
        amount = Decimal(self.unit_amount) / 100
        return (amount / 12).quantize(Decimal("0.0001")) if self.interval == "year" else amount


def catalog(currency: str = "EUR", created: int = 1_700_000_000) -> dict[str, Price]:
    """The plan catalog in the platform currency, keyed "<plan>_<interval>"."""
    cur = currency.lower()
    prices = {}
    for plan, name, monthly in PLANS:
        for interval, amount in (("month", monthly), ("year", monthly * 10)):
            key = f"{plan}_{interval}"
            prices[key] = Price(id=f"price_{plan}_{interval}ly_{cur}", plan=plan, name=name,
                                product=f"prod_{plan}", unit_amount=amount, interval=interval,
                                currency=cur, created=created)
    return prices


@dataclass
class CustomerProfile:
    """The account behind a Stripe customer (the generator fills it from its account rows)."""

    id: str
    name: str
    email: str | None
    country: str
    created_at: datetime
    deleted_at: datetime | None = None
    billing_name: str | None = None
    billing_email: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    vat_id: str | None = None
    language: str = "en"


# ---------------------------------------------------------------------------------------------
# Signing and delivery


def signature_header(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's `Stripe-Signature` header (scheme v1: HMAC-SHA256 of "<t>.<payload>")."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode("utf-8"), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def encode(event: dict) -> str:
    """The body: UTF-8 JSON. Compact, not pretty-printed like Stripe's, because only the compact
    form uses the C encoder (five times faster for hundreds of thousands of events)."""
    return json.dumps(event, ensure_ascii=False)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    by_status: dict[int, int] = field(default_factory=dict)

    def record(self, event_id: str, status: int, text: str) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if 200 <= status < 300:
            self.delivered += 1
        else:
            self.failed.append((event_id, status, text[:300]))


def deliver(events: Iterable[dict], secret: str, *, client=None, url: str | None = None,
            report: DeliveryReport | None = None) -> DeliveryReport:
    """POSTs each event to the webhook, signed now: through a Flask test client, or to a live URL
    (e.g. http://127.0.0.1:5000/stripe/webhook)."""
    if (client is None) == (url is None):
        raise ValueError("give exactly one of client or url")
    report = report or DeliveryReport()
    for event in events:
        body = encode(event).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Stripe-Signature": signature_header(body, secret),
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        if client is not None:
            resp = client.post(WEBHOOK_PATH, data=body, headers=headers)
            report.record(event["id"], resp.status_code, resp.get_data(as_text=True))
            continue
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                report.record(event["id"], resp.status, resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            report.record(event["id"], e.code, e.read().decode("utf-8", "replace"))
    return report


# ---------------------------------------------------------------------------------------------
# Object builders (current API shape)


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def _add_months(ts: int, months: int) -> int:
    d = datetime.fromtimestamp(ts, UTC)
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return _ts(d.replace(year=year, month=month, day=day))


def _period_end(start: int, interval: str) -> int:
    return _add_months(start, 12 if interval == "year" else 1)


def _address(p: CustomerProfile) -> dict:
    return {"city": p.city, "country": p.country if p.line1 else None, "line1": p.line1,
            "line2": p.line2, "postal_code": p.postal_code, "state": None}


def _price_obj(price: Price) -> dict:
    return {
        "id": price.id, "object": "price", "active": True, "billing_scheme": "per_unit",
        "created": price.created, "currency": price.currency, "custom_unit_amount": None,
        "livemode": False, "lookup_key": f"{price.plan}_{price.interval}ly",
        "metadata": {"plan": price.plan}, "nickname": price.name,
        "product": price.product,
        "recurring": {"interval": price.interval, "interval_count": 1, "meter": None,
                      "trial_period_days": None, "usage_type": "licensed"},
        "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring", "unit_amount": price.unit_amount,
        "unit_amount_decimal": str(price.unit_amount),
    }


def _plan_obj(price: Price) -> dict:
    """The legacy `plan` mirror Stripe still puts on subscription items."""
    return {
        "id": price.id, "object": "plan", "active": True, "amount": price.unit_amount,
        "amount_decimal": str(price.unit_amount), "billing_scheme": "per_unit",
        "created": price.created, "currency": price.currency, "interval": price.interval,
        "interval_count": 1, "livemode": False, "metadata": {"plan": price.plan}, "meter": None,
        "nickname": price.name, "product": price.product,
        "tiers_mode": None, "transform_usage": None, "trial_period_days": None,
        "usage_type": "licensed",
    }


def _product_obj(price: Price) -> dict:
    return {
        "id": price.product, "object": "product", "active": True, "created": price.created,
        "default_price": None, "description": f"The {price.name} plan", "images": [],
        "livemode": False, "marketing_features": [], "metadata": {"plan": price.plan},
        "name": price.name, "package_dimensions": None, "shippable": None,
        "statement_descriptor": None, "tax_code": "txcd_10103001", "type": "service",
        "unit_label": None, "updated": price.created, "url": None,
    }


def _tax_rate(country: str) -> Decimal:
    return DOMESTIC_VAT.get(country, Decimal(0))


def _round_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class _EndOfTime(Exception):
    """A story reached its end (today, or the account's deletion): stop writing."""


class Life:
    """One customer's history at Stripe: a clock, the live objects, and the events so far."""

    def __init__(self, rng: random.Random, profile: CustomerProfile, prices: dict[str, Price],
                 start: datetime, end: datetime):
        self.rng = rng
        self.profile = profile
        self.prices = prices
        self.clock = _ts(start)
        self.end = _ts(end)
        self.events: list[dict] = []
        self.customer: dict | None = None
        self.card: dict | None = None
        self.sub: dict | None = None  # the live subscription object
        self.price: Price | None = None
        self.schedule: dict | None = None
        self.pending_price: Price | None = None  # a scheduled downgrade
        self.abandon_trial = False
        self.fail_next: str | None = None  # None | "recover" | "suspend"
        self.paid_invoices: list[dict] = []
        self.invoice_seq = 0
        self.currency = next(iter(prices.values())).currency

    # ids and the clock ---------------------------------------------------------------------
    def _id(self, prefix: str, n: int = 24) -> str:
        return prefix + "".join(self.rng.choice(_ALPHANUM) for _ in range(n))

    def _check(self) -> None:
        if self.clock > self.end:
            raise _EndOfTime

    def wait_until(self, ts: int) -> None:
        self.clock = max(self.clock, ts)
        self._check()

    def wait(self, days: float) -> None:
        self.wait_until(self.clock + int(days * 86400) + self.rng.randint(0, 3600))

    def emit(self, type_: str, obj: dict, previous: dict | None = None) -> dict:
        self._check()
        data: dict = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = json.loads(json.dumps(previous))
        event = {
            "id": self._id("evt_1"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.clock,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": self._id("req_", 14), "idempotency_key": None}
            if not type_.startswith("invoice.") else {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        self.clock += self.rng.randint(1, 4)
        return event

    @property
    def alive(self) -> bool:
        return self.sub is not None and self.sub["status"] not in ("canceled", "incomplete_expired")

    # customer --------------------------------------------------------------------------------
    def open_customer(self) -> None:
        p = self.profile
        tax_ids = []
        if p.vat_id:
            kind = "ch_vat" if p.country == "CH" else ("gb_vat" if p.country == "GB" else "eu_vat")
            tax_ids.append({"id": self._id("txi_1"), "object": "tax_id", "country": p.country,
                            "created": self.clock, "customer": None, "livemode": False,
                            "type": kind, "value": p.vat_id,
                            "verification": {"status": "verified", "verified_address": None,
                                             "verified_name": p.billing_name}})
        customer_id = self._id("cus_", 14)
        for t in tax_ids:
            t["customer"] = customer_id
        self.customer = {
            "id": customer_id, "object": "customer", "address": _address(p), "balance": 0,
            "created": self.clock, "currency": None, "default_source": None, "delinquent": False,
            "description": None, "discount": None, "email": p.billing_email or p.email,
            "invoice_prefix": "".join(self.rng.choice(string.ascii_uppercase + string.digits)
                                      for _ in range(8)),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": False, "metadata": {"account_id": p.id}, "name": p.billing_name or p.name,
            "next_invoice_sequence": 1, "phone": None, "preferred_locales": [p.language],
            "shipping": None, "tax_exempt": "reverse" if p.vat_id and p.country != PLATFORM_COUNTRY
            else "none",
            "tax_ids": {"object": "list", "data": tax_ids, "has_more": False,
                        "url": f"/v1/customers/{customer_id}/tax_ids"},
            "test_clock": None,
        }
        self.emit("customer.created", self.customer)

    def attach_card(self) -> None:
        brand, last4 = self.rng.choice([("visa", "4242"), ("mastercard", "4444"), ("visa", "1881"),
                                        ("amex", "8431"), ("mastercard", "5100"), ("visa", "0077")])
        last4 = last4 if self.rng.random() < 0.3 else f"{self.rng.randint(0, 9999):04d}"
        created = datetime.fromtimestamp(self.clock, UTC)
        p = self.profile
        pm = {
            "id": self._id("pm_1"), "object": "payment_method", "allow_redisplay": "always",
            "billing_details": {"address": _address(p), "email": p.billing_email or p.email,
                                "name": p.billing_name or p.name, "phone": None, "tax_id": None},
            "card": {"brand": brand, "checks": {"address_line1_check": None,
                                                "address_postal_code_check": None,
                                                "cvc_check": "pass"},
                     "country": p.country, "display_brand": brand,
                     "exp_month": self.rng.randint(1, 12), "exp_year": created.year + self.rng.randint(1, 5),
                     "fingerprint": self._id("", 16), "funding": "credit",
                     "generated_from": None, "last4": last4,
                     "networks": {"available": [brand], "preferred": None},
                     "regulated_status": "unregulated",
                     "three_d_secure_usage": {"supported": True}, "wallet": None},
            "created": self.clock, "customer": self.customer["id"], "livemode": False,
            "metadata": {}, "type": "card",
        }
        old = self.customer["invoice_settings"]["default_payment_method"]
        self.card = pm
        self.emit("payment_method.attached", pm)
        self.customer["invoice_settings"]["default_payment_method"] = pm["id"]
        self.emit("customer.updated", self.customer,
                  {"invoice_settings": {"default_payment_method": old}})

    def update_billing(self) -> None:
        """A new address, or a new billing e-mail: what customers edit in the portal."""
        c = self.customer
        if self.rng.random() < 0.5 and c["address"]["line1"]:
            previous = {"address": dict(c["address"])}
            parts = c["address"]["line1"].split(" ")
            number = str(self.rng.randint(1, 200))
            if parts[-1].isdigit():  # "Bahnhofstrasse 12"
                parts[-1] = number
            else:  # "12 rue de Rivoli"
                parts[0] = number
            c["address"] = dict(c["address"], line1=" ".join(parts))
        else:
            previous = {"email": c["email"]}
            local = self.rng.choice(["billing", "accounting", "ap", "finance.team"])
            domain = (c["email"] or self.profile.email or "x@demo.example").split("@", 1)[1]
            c["email"] = f"{local}@{domain}"
        self.emit("customer.updated", c, previous)

    def delete_customer(self) -> None:
        self.emit("customer.deleted", self.customer)

    # subscription objects ----------------------------------------------------------------------
    def _item(self, price: Price, start: int, end: int) -> dict:
        current = self.sub["items"] if self.sub else None
        return {
            "id": current["data"][0]["id"] if current else self._id("si_", 14),
            "object": "subscription_item", "billing_thresholds": None,
            "created": self.sub["created"] if self.sub else self.clock,
            "current_period_end": end, "current_period_start": start, "discounts": [],
            "metadata": {}, "plan": _plan_obj(price), "price": _price_obj(price), "quantity": 1,
            "subscription": self.sub["id"] if self.sub else None, "tax_rates": [],
        }

    def _items_list(self, item: dict) -> dict:
        return {"object": "list", "data": [item], "has_more": False, "total_count": 1,
                "url": f"/v1/subscription_items?subscription={item['subscription']}"}

    @property
    def period(self) -> tuple[int, int]:
        item = self.sub["items"]["data"][0]
        return item["current_period_start"], item["current_period_end"]

    def _set_item(self, price: Price, start: int, end: int) -> dict:
        """Replaces the item; returns the old items list (for previous_attributes)."""
        old = json.loads(json.dumps(self.sub["items"]))
        self.sub["items"] = self._items_list(self._item(price, start, end))
        self.price = price
        return old

    def subscribe(self, price: Price, trial_days: int = 0) -> None:
        start = self.clock
        end = start + trial_days * 86400 if trial_days else _period_end(start, price.interval)
        sub_id = self._id("sub_1")
        self.sub = {
            "id": sub_id, "object": "subscription", "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": True,
                              "liability": {"type": "self"}},
            "billing_cycle_anchor": end if trial_days else start,
            "billing_cycle_anchor_config": None, "billing_mode": {"type": "classic"},
            "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically", "created": start,
            "currency": price.currency, "customer": self.customer["id"], "days_until_due": None,
            "default_payment_method": self.card["id"] if self.card else None,
            "default_source": None, "default_tax_rates": [], "description": None,
            "discounts": [], "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": None, "latest_invoice": None, "livemode": False,
            "metadata": {"account_id": self.profile.id}, "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None, "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "on_subscription"},
            "pending_invoice_item_interval": None, "pending_setup_intent": None,
            "pending_update": None, "schedule": None, "start_date": start,
            "status": "trialing" if trial_days else "active", "test_clock": None,
            "transfer_data": None, "trial_end": end if trial_days else None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}},
            "trial_start": start if trial_days else None,
        }
        self.price = price
        self.sub["items"] = self._items_list(self._item(price, start, end))
        self.sub["items"]["data"][0]["subscription"] = sub_id
        self.sub["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
        if trial_days:
            self.emit("customer.subscription.created", self.sub)
            return
        invoice = self._invoice("subscription_create", self._cycle_lines(price, start, end))
        self.sub["latest_invoice"] = invoice["id"]
        self.emit("customer.subscription.created", self.sub)
        self._pay(invoice)

    # invoices ---------------------------------------------------------------------------------
    def _cycle_lines(self, price: Price, start: int, end: int) -> list[tuple[int, str, int, int, bool]]:
        label = f"1 × {price.name} (at {price.unit_amount / 100:.2f} {price.currency.upper()} / {price.interval})"
        return [(price.unit_amount, label, start, end, False)]

    def _invoice(self, reason: str, lines: list[tuple[int, str, int, int, bool]]) -> dict:
        p = self.profile
        rate = _tax_rate(p.country)
        invoice_id = self._id("in_1")
        self.invoice_seq += 1
        line_objs, subtotal, tax_total = [], 0, 0
        for amount, description, start, end, proration in lines:
            tax = _round_minor(Decimal(amount) * rate / 100)
            subtotal += amount
            tax_total += tax
            line_objs.append({
                "id": self._id("il_1"), "object": "line_item", "amount": amount,
                "currency": self.currency, "description": description, "discount_amounts": [],
                "discountable": True, "discounts": [], "invoice": invoice_id, "livemode": False,
                "metadata": {},
                "parent": {"invoice_item_details": None, "type": "subscription_item_details",
                           "subscription_item_details": {
                               "invoice_item": None, "proration": proration,
                               "proration_details": {"credited_items": None},
                               "subscription": self.sub["id"],
                               "subscription_item": self.sub["items"]["data"][0]["id"]}},
                "period": {"end": end, "start": start}, "pretax_credit_amounts": [],
                "pricing": {"price_details": {"price": self.price.id, "product": self.price.product},
                            "type": "price_details", "unit_amount_decimal": str(amount)},
                "quantity": 1, "subtotal": amount,
                "taxes": [self._tax_entry(tax, amount, rate)],
            })
        total = subtotal + tax_total
        period_start, period_end = lines[0][2], lines[0][3]
        return {
            "id": invoice_id, "object": "invoice", "account_country": PLATFORM_COUNTRY,
            "account_name": PLATFORM_NAME, "account_tax_ids": None, "amount_due": total,
            "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": total,
            "amount_shipping": 0, "application": None, "attempt_count": 0, "attempted": False,
            "auto_advance": True,
            "automatic_tax": {"disabled_reason": None, "enabled": True,
                              "liability": {"type": "self"}, "provider": "stripe",
                              "status": "complete"},
            "automatically_finalizes_at": None, "billing_reason": reason,
            "collection_method": "charge_automatically", "created": self.clock,
            "currency": self.currency, "custom_fields": None, "customer": self.customer["id"],
            "customer_account": None, "customer_address": dict(self.customer["address"]),
            "customer_email": self.customer["email"], "customer_name": self.customer["name"],
            "customer_phone": None, "customer_shipping": None,
            "customer_tax_exempt": self.customer["tax_exempt"],
            "customer_tax_ids": [{"type": t["type"], "value": t["value"]}
                                 for t in self.customer["tax_ids"]["data"]],
            "default_payment_method": None, "default_source": None, "default_tax_rates": [],
            "description": None, "discounts": [], "due_date": None, "effective_at": self.clock,
            "ending_balance": 0, "footer": None, "from_invoice": None,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_demo/test_{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_demo/test_{invoice_id}/pdf",
            "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": line_objs, "has_more": False,
                      "total_count": len(line_objs), "url": f"/v1/invoices/{invoice_id}/lines"},
            "livemode": False, "metadata": {}, "next_payment_attempt": None,
            "number": f"{self.customer['invoice_prefix']}-{self.invoice_seq:04d}",
            "on_behalf_of": None,
            "parent": {"quote_details": None, "type": "subscription_details",
                       "subscription_details": {"metadata": {"account_id": self.profile.id},
                                                "subscription": self.sub["id"]}},
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "payments": {"object": "list", "data": [], "has_more": False,
                         "url": f"/v1/invoices/{invoice_id}/payments"},
            "period_end": period_end, "period_start": period_start,
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": None, "rendering": None, "shipping_cost": None,
            "shipping_details": None, "starting_balance": 0, "statement_descriptor": None,
            "status": "open",
            "status_transitions": {"finalized_at": self.clock, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "test_clock": None,
            "total": total, "total_discount_amounts": [], "total_excluding_tax": subtotal,
            "total_pretax_credit_amounts": [],
            "total_taxes": [self._tax_entry(tax_total, subtotal, rate)],
            "webhooks_delivered_at": self.clock,
        }

    def _tax_entry(self, amount: int, taxable: int, rate: Decimal) -> dict:
        p = self.profile
        if rate:
            reason = "standard_rated"
        elif p.vat_id and p.country != PLATFORM_COUNTRY:
            reason = "reverse_charge"
        else:
            reason = "not_subject_to_tax"
        return {"amount": amount, "tax_behavior": "exclusive",
                "tax_rate_details": {"tax_rate": f"txr_vat_{p.country.lower()}_{str(rate).replace('.', '_')}"},
                "taxability_reason": reason, "taxable_amount": taxable, "type": "tax_rate_details"}

    def _pay(self, invoice: dict, attempt: int = 1) -> None:
        payment_intent = self._id("pi_3")
        charge_id = self._id("ch_3")
        invoice.update({
            "amount_paid": invoice["amount_due"], "amount_remaining": 0, "attempt_count": attempt,
            "attempted": True, "status": "paid", "next_payment_attempt": None,
        })
        invoice["status_transitions"]["paid_at"] = self.clock
        invoice["payments"]["data"] = [{
            "id": self._id("inpay_1"), "object": "invoice_payment", "amount_paid": invoice["total"],
            "amount_requested": invoice["total"], "created": self.clock, "currency": self.currency,
            "invoice": invoice["id"], "is_default": True, "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": self.clock},
        }]
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        self.paid_invoices.append({"invoice": invoice, "charge": charge_id,
                                   "payment_intent": payment_intent, "paid_at": self.clock})

    def _fail(self, invoice: dict, attempt: int, next_attempt: int | None) -> None:
        invoice.update({"attempt_count": attempt, "attempted": True,
                        "next_payment_attempt": next_attempt})
        self.emit("invoice.payment_failed", invoice)

    def _sub_update(self, previous: dict) -> None:
        self.emit("customer.subscription.updated", self.sub, previous)

    # the clock runs: period ends ---------------------------------------------------------------
    def run_until(self, ts: int) -> None:
        """Lets time pass up to `ts` (capped at the end), handling every period end on the way."""
        limit = min(ts, self.end)
        while self.alive and self.period[1] <= limit:
            self.wait_until(self.period[1])
            self._period_end()
        self.clock = max(self.clock, min(limit, self.end))

    def run_periods(self, n: int) -> None:
        for _ in range(n):
            if not self.alive:
                return
            self.run_until(self.period[1])

    def _period_end(self) -> None:
        sub = self.sub
        _start, end = self.period
        if sub["status"] == "trialing":
            if self.abandon_trial:
                self._delete("cancellation_requested")
                return
            new_end = _period_end(end, self.price.interval)
            old_items = self._set_item(self.price, end, new_end)
            invoice = self._invoice("subscription_cycle", self._cycle_lines(self.price, end, new_end))
            previous = {"items": old_items, "latest_invoice": sub["latest_invoice"], "status": "trialing"}
            sub.update({"status": "active", "latest_invoice": invoice["id"]})
            self._sub_update(previous)
            self._pay(invoice)
            return
        if sub["cancel_at_period_end"]:
            self._delete("cancellation_requested")
            return
        price = self.price
        if self.pending_price is not None:  # the scheduled downgrade takes effect
            price = self.pending_price
            new_end = _period_end(end, price.interval)
            old_items = self._set_item(price, end, new_end)
            invoice = self._invoice("subscription_cycle", self._cycle_lines(price, end, new_end))
            previous = {"items": old_items, "latest_invoice": sub["latest_invoice"],
                        "schedule": self.schedule["id"]}
            sub.update({"latest_invoice": invoice["id"], "schedule": None})
            self._sub_update(previous)
            self._release_schedule()
            self.pending_price = None
            self._collect(invoice)
            return
        new_end = _period_end(end, price.interval)
        old_items = self._set_item(price, end, new_end)
        invoice = self._invoice("subscription_cycle", self._cycle_lines(price, end, new_end))
        previous = {"items": old_items, "latest_invoice": sub["latest_invoice"]}
        sub["latest_invoice"] = invoice["id"]
        self._sub_update(previous)
        self._collect(invoice)

    def _collect(self, invoice: dict) -> None:
        """Charges a cycle invoice: at once, or after failures (recovered, or suspended)."""
        outcome, self.fail_next = self.fail_next, None
        if outcome is None:
            self._pay(invoice)
            return
        first = self.clock
        retries = [first + d * 86400 for d in RETRY_DAYS]
        self._fail(invoice, 1, retries[0])
        previous = {"status": "active"}
        self.sub["status"] = "past_due"
        self._sub_update(previous)
        recover_at = self.rng.randint(2, len(retries) + 1) if outcome == "recover" else None
        for attempt, at in enumerate(retries, start=2):
            self.wait_until(at + self.rng.randint(0, 7200))
            if attempt == recover_at:
                if self.rng.random() < 0.6:
                    self.attach_card()  # the customer fixes the card, Stripe retries at once
                self._pay(invoice, attempt)
                self.sub["status"] = "active"
                self._sub_update({"status": "past_due"})
                return
            nxt = retries[attempt - 1] if attempt - 1 < len(retries) else None
            self._fail(invoice, attempt, nxt)
        # Every retry failed: Stripe cancels the subscription (Billing settings: "cancel").
        self.wait(1)
        invoice.update({"status": "uncollectible"})
        invoice["status_transitions"]["marked_uncollectible_at"] = self.clock
        self._delete("payment_failed")

    def _delete(self, reason: str) -> None:
        sub = self.sub
        sub.update({"status": "canceled", "ended_at": self.clock,
                    "canceled_at": sub["canceled_at"] or self.clock})
        sub["cancellation_details"] = {"comment": None, "feedback": sub["cancellation_details"].get("feedback"),
                                       "reason": reason}
        self.emit("customer.subscription.deleted", sub)

    # what customers and operators do -------------------------------------------------------------
    def upgrade(self, price: Price) -> None:
        """A plan change to a dearer price, prorated and invoiced at once (always_invoice)."""
        start, end = self.period
        old = self.price
        now = self.clock
        fraction = Decimal(end - now) / Decimal(end - start)
        credit = -_round_minor(Decimal(old.unit_amount) * fraction)
        charge = _round_minor(Decimal(price.unit_amount) * fraction)
        old_items = self._set_item(price, start, end)
        lines = [(credit, f"Unused time on {old.name} after {datetime.fromtimestamp(now, UTC):%d %b %Y}",
                  now, end, True),
                 (charge, f"Remaining time on {price.name} after {datetime.fromtimestamp(now, UTC):%d %b %Y}",
                  now, end, True)]
        invoice = self._invoice("subscription_update", lines)
        previous = {"items": old_items, "latest_invoice": self.sub["latest_invoice"]}
        self.sub["latest_invoice"] = invoice["id"]
        self._sub_update(previous)
        if invoice["amount_due"] > 0:
            self._pay(invoice)

    def schedule_downgrade(self, price: Price) -> None:
        """A subscription schedule: this plan until the period end, then the cheaper one."""
        start, end = self.period
        sched_id = self._id("sub_sched_1")

        def phase(p: Price, s: int, e: int | None) -> dict:
            return {"add_invoice_items": [], "application_fee_percent": None,
                    "automatic_tax": {"disabled_reason": None, "enabled": True,
                                      "liability": {"type": "self"}},
                    "billing_cycle_anchor": None, "billing_thresholds": None,
                    "collection_method": None, "currency": self.currency,
                    "default_payment_method": None, "default_tax_rates": [], "description": None,
                    "discounts": [], "end_date": e, "invoice_settings": None,
                    "items": [{"billing_thresholds": None, "discounts": [], "metadata": {},
                               "plan": p.id, "price": p.id, "quantity": 1, "tax_rates": []}],
                    "metadata": {}, "on_behalf_of": None, "proration_behavior": "none",
                    "start_date": s, "transfer_data": None, "trial_end": None}

        self.schedule = {
            "id": sched_id, "object": "subscription_schedule", "application": None,
            "billing_mode": {"type": "classic"}, "canceled_at": None, "completed_at": None,
            "created": self.clock, "current_phase": {"end_date": end, "start_date": start},
            "customer": self.customer["id"], "customer_account": None,
            "default_settings": {"application_fee_percent": None,
                                 "automatic_tax": {"disabled_reason": None, "enabled": True,
                                                   "liability": {"type": "self"}},
                                 "billing_cycle_anchor": "automatic", "billing_thresholds": None,
                                 "collection_method": "charge_automatically",
                                 "default_payment_method": None, "description": None,
                                 "invoice_settings": {"account_tax_ids": None,
                                                      "days_until_due": None,
                                                      "issuer": {"type": "self"}},
                                 "on_behalf_of": None, "transfer_data": None},
            "end_behavior": "release", "livemode": False, "metadata": {},
            "phases": [phase(self.price, start, end)], "released_at": None,
            "released_subscription": None, "status": "active", "subscription": self.sub["id"],
            "test_clock": None,
        }
        self.emit("subscription_schedule.created", self.schedule)
        self.sub["schedule"] = sched_id
        self._sub_update({"schedule": None})
        previous_phases = json.loads(json.dumps(self.schedule["phases"]))
        self.schedule["phases"] = [phase(self.price, start, end),
                                   phase(price, end, _period_end(end, price.interval))]
        self.emit("subscription_schedule.updated", self.schedule, {"phases": previous_phases})
        self.pending_price = price

    def _release_schedule(self) -> None:
        self.schedule.update({"status": "released", "released_at": self.clock,
                              "released_subscription": self.sub["id"], "subscription": None})
        self.emit("subscription_schedule.released", self.schedule)
        self.schedule = None

    def cancel_downgrade(self) -> None:
        """The customer keeps the dearer plan after all: the schedule is released."""
        schedule_id = self.schedule["id"]
        self._release_schedule()
        self.pending_price = None
        self.sub["schedule"] = None
        self._sub_update({"schedule": schedule_id})

    def soft_cancel(self, feedback: str | None = None) -> None:
        previous = {"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
                    "cancellation_details": {"feedback": None, "reason": None}}
        self.sub.update({"cancel_at": self.period[1], "cancel_at_period_end": True,
                         "canceled_at": self.clock})
        self.sub["cancellation_details"] = {"comment": None, "feedback": feedback,
                                            "reason": "cancellation_requested"}
        self._sub_update(previous)

    def reactivate(self) -> None:
        previous = {"cancel_at": self.sub["cancel_at"], "cancel_at_period_end": True,
                    "canceled_at": self.sub["canceled_at"],
                    "cancellation_details": dict(self.sub["cancellation_details"])}
        self.sub.update({"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None})
        self.sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        self._sub_update(previous)

    def cancel_now(self, refund_unused: bool = True) -> None:
        """Cancelled at once by an operator; the unused time of the last payment is refunded."""
        start, end = self.period
        last = self.paid_invoices[-1] if self.paid_invoices else None
        self._delete("cancellation_requested")
        if refund_unused and last is not None:
            fraction = Decimal(max(end - self.clock, 0)) / Decimal(end - start)
            amount = _round_minor(Decimal(last["invoice"]["subtotal"]) * fraction)
            if amount > 0:
                self.refund(last, amount, "order_change")

    def refund(self, paid: dict | None = None, amount_ex_tax: int | None = None,
               reason: str = "requested_by_customer") -> None:
        """A credit note against a paid invoice, refunded to the card (credit note + charge.refunded)."""
        paid = paid or self.paid_invoices[-1]
        invoice = paid["invoice"]
        subtotal = invoice["subtotal"]
        ex_tax = subtotal if amount_ex_tax is None else min(amount_ex_tax, subtotal)
        rate = _tax_rate(self.profile.country)
        tax = _round_minor(Decimal(ex_tax) * rate / 100)
        total = ex_tax + tax
        refund_id = self._id("re_3")
        cn_id = self._id("cn_1")
        note = {
            "id": cn_id, "object": "credit_note", "amount": total, "amount_shipping": 0,
            "created": self.clock, "currency": self.currency, "customer": self.customer["id"],
            "customer_account": None, "customer_balance_transaction": None,
            "discount_amount": 0, "discount_amounts": [], "effective_at": self.clock,
            "invoice": invoice["id"],
            "lines": {"object": "list", "has_more": False, "url": f"/v1/credit_notes/{cn_id}/lines",
                      "data": [{"id": self._id("cnli_1"), "object": "credit_note_line_item",
                                "amount": ex_tax, "description": invoice["lines"]["data"][-1]["description"],
                                "discount_amount": 0, "discount_amounts": [],
                                "invoice_line_item": invoice["lines"]["data"][-1]["id"],
                                "livemode": False, "metadata": {}, "pretax_credit_amounts": [],
                                "quantity": 1, "tax_rates": [],
                                "taxes": [self._tax_entry(tax, ex_tax, rate)],
                                "type": "invoice_line_item", "unit_amount": None,
                                "unit_amount_decimal": None}]},
            "livemode": False, "memo": None, "metadata": {},
            "number": f"{invoice['number']}-CN-01", "out_of_band_amount": None,
            "pdf": f"https://pay.stripe.com/credit_notes/acct_demo/test_{cn_id}/pdf",
            "post_payment_amount": total, "pre_payment_amount": 0, "pretax_credit_amounts": [],
            "reason": reason,
            "refunds": [{"amount_refunded": total, "payment_record_refund": None,
                         "refund": refund_id, "type": "refund"}],
            "shipping_cost": None, "status": "issued", "subtotal": ex_tax,
            "subtotal_excluding_tax": ex_tax, "total": total, "total_excluding_tax": ex_tax,
            "total_taxes": [self._tax_entry(tax, ex_tax, rate)], "type": "post_payment",
            "voided_at": None,
        }
        self.emit("credit_note.created", note)
        card = (self.card or {}).get("card") or {"brand": "visa", "last4": "4242", "exp_month": 1,
                                                  "exp_year": 2030, "country": self.profile.country}
        charge = {
            "id": paid["charge"], "object": "charge", "amount": invoice["amount_paid"],
            "amount_captured": invoice["amount_paid"], "amount_refunded": total,
            "application": None, "application_fee": None, "application_fee_amount": None,
            "balance_transaction": self._id("txn_3"),
            "billing_details": {"address": dict(self.customer["address"]),
                                "email": self.customer["email"], "name": self.customer["name"],
                                "phone": None, "tax_id": None},
            "calculated_statement_descriptor": "BACKOFFICE DEMO", "captured": True,
            "created": paid["paid_at"], "currency": self.currency, "customer": self.customer["id"],
            "description": "Subscription update" if invoice["billing_reason"] == "subscription_update"
            else "Subscription creation" if invoice["billing_reason"] == "subscription_create"
            else "Subscription cycle",
            "disputed": False, "failure_balance_transaction": None, "failure_code": None,
            "failure_message": None, "fraud_details": {}, "livemode": False, "metadata": {},
            "on_behalf_of": None,
            "outcome": {"advice_code": None, "network_advice_code": None,
                        "network_decline_code": None, "network_status": "approved_by_network",
                        "reason": None, "risk_level": "normal", "seller_message": "Payment complete.",
                        "type": "authorized"},
            "paid": True, "payment_intent": paid["payment_intent"],
            "payment_method": (self.card or {}).get("id"),
            "payment_method_details": {"card": {"brand": card["brand"], "country": card["country"],
                                                "exp_month": card["exp_month"],
                                                "exp_year": card["exp_year"], "funding": "credit",
                                                "last4": card["last4"], "network": card["brand"]},
                                       "type": "card"},
            "receipt_email": self.customer["email"], "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/test_{paid['charge']}",
            "refunded": total >= invoice["amount_paid"],
            "refunds": {"object": "list", "has_more": False, "total_count": 1,
                        "url": f"/v1/charges/{paid['charge']}/refunds",
                        "data": [{"id": refund_id, "object": "refund", "amount": total,
                                  "balance_transaction": self._id("txn_3"),
                                  "charge": paid["charge"], "created": self.clock,
                                  "currency": self.currency, "metadata": {},
                                  "payment_intent": paid["payment_intent"], "reason": reason
                                  if reason in ("duplicate", "fraudulent", "requested_by_customer")
                                  else "requested_by_customer",
                                  "receipt_number": None, "status": "succeeded"}]},
            "review": None, "shipping": None, "source_transfer": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "succeeded", "transfer_data": None, "transfer_group": None,
        }
        self.emit("charge.refunded", charge, {"amount_refunded": 0, "refunded": False,
                                              "refunds": {"data": [], "total_count": 0}})


# ---------------------------------------------------------------------------------------------
# Life stories

STORY_WEIGHTS: dict[str, int] = {
    "steady_monthly": 20, "steady_yearly": 8, "trial_to_paid": 12, "trial_abandoned": 5,
    "upgrade": 10, "scheduled_downgrade": 5, "downgrade_cancelled": 3, "cancel_reactivate": 4,
    "cancel_expire": 6, "immediate_cancel": 3, "payment_recovered": 8, "suspended": 3,
    "refund": 4, "free_with_card": 7,
}
STORIES = tuple(STORY_WEIGHTS)


def _pick_plan(life: Life, interval: str = "month", at_most: str | None = None,
               at_least: str | None = None) -> Price:
    keys = [p for p, _, _ in PLANS]
    lo = keys.index(at_least) if at_least else 0
    hi = keys.index(at_most) + 1 if at_most else len(keys)
    options = keys[lo:hi]
    weights = {"standard": 50, "premium": 35, "business": 15}
    plan = life.rng.choices(options, [weights[k] for k in options])[0]
    return life.prices[f"{plan}_{interval}"]


def _next_plan(life: Life, price: Price, step: int) -> Price:
    keys = [p for p, _, _ in PLANS]
    return life.prices[f"{keys[keys.index(price.plan) + step]}_{price.interval}"]


def _story(life: Life, kind: str) -> None:
    rng = life.rng
    life.open_customer()
    life.wait(rng.uniform(0, 0.02))
    if kind == "free_with_card":
        life.attach_card()
        life.wait(rng.uniform(20, 200))
        life.update_billing()
        return
    life.attach_card()
    interval = "year" if kind == "steady_yearly" or (kind not in ("payment_recovered", "suspended")
                                                      and rng.random() < 0.08) else "month"
    if kind in ("trial_to_paid", "trial_abandoned"):
        life.subscribe(_pick_plan(life, interval), trial_days=TRIAL_DAYS)
        life.abandon_trial = kind == "trial_abandoned"
        life.run_periods(1)
    elif kind == "upgrade":
        life.subscribe(_pick_plan(life, interval, at_most="premium"))
    elif kind in ("scheduled_downgrade", "downgrade_cancelled"):
        life.subscribe(_pick_plan(life, interval, at_least="premium"))
    else:
        life.subscribe(_pick_plan(life, interval))
    if not life.alive:
        return
    periods = 1 if interval == "year" else rng.randint(1, 5)
    life.run_periods(periods)
    life.wait(rng.uniform(2, 20) if interval == "month" else rng.uniform(20, 200))
    if not life.alive:
        return
    if kind == "upgrade":
        life.upgrade(_next_plan(life, life.price, +1))
    elif kind == "scheduled_downgrade":
        life.schedule_downgrade(_next_plan(life, life.price, -1))
    elif kind == "downgrade_cancelled":
        life.schedule_downgrade(_next_plan(life, life.price, -1))
        life.wait(rng.uniform(1, 5))
        life.cancel_downgrade()
    elif kind == "cancel_reactivate":
        life.soft_cancel(rng.choice([None, "too_expensive", "unused"]))
        life.wait(rng.uniform(1, 6))
        life.reactivate()
    elif kind == "cancel_expire":
        life.soft_cancel(rng.choice([None, "too_expensive", "switched_service", "missing_features"]))
    elif kind == "immediate_cancel":
        life.cancel_now()
        return
    elif kind == "payment_recovered":
        life.fail_next = "recover"
    elif kind == "suspended":
        life.fail_next = "suspend"
    elif kind == "refund":
        life.refund(amount_ex_tax=None if rng.random() < 0.6 else life.paid_invoices[-1]["invoice"]["subtotal"] // 2)
    if rng.random() < 0.3 and life.alive:
        life.wait(rng.uniform(1, 10))
        life.update_billing()


def build_story(kind: str, profile: CustomerProfile, rng: random.Random, prices: dict[str, Price],
                start: datetime, end: datetime) -> list[dict]:
    """The events of one account's life at Stripe, from `start` until `end` (today or deletion)."""
    if kind not in STORY_WEIGHTS:
        raise ValueError(f"unknown story {kind!r}")
    deleted = profile.deleted_at is not None
    life = Life(rng, profile, prices, start, end - timedelta(hours=2) if deleted else end)
    try:
        _story(life, kind)
        life.run_until(life.end)  # renewals (and pending period-end changes) up to today
    except _EndOfTime:
        pass
    if deleted and life.customer is not None:  # the account was closed: so was its billing
        life.end = _ts(end)
        try:
            life.wait_until(life.end - 3600)
            if life.alive:
                life.cancel_now(refund_unused=False)
            if rng.random() < 0.5:
                life.delete_customer()
        except _EndOfTime:
            pass
    return life.events


def price_events(prices: dict[str, Price], rng: random.Random, created: int) -> list[dict]:
    """product.created and price.created for the catalog: how the platform's plans came to be."""
    events, clock = [], created
    products_done: set[str] = set()
    for price in prices.values():
        if price.product not in products_done:
            products_done.add(price.product)
            events.append(_bare_event(rng, "product.created", _product_obj(price), clock))
            clock += 1
        events.append(_bare_event(rng, "price.created", _price_obj(price), clock))
        clock += 1
    return events


def _bare_event(rng: random.Random, type_: str, obj: dict, created: int) -> dict:
    return {"id": "evt_1" + "".join(rng.choice(_ALPHANUM) for _ in range(24)), "object": "event",
            "api_version": API_VERSION, "created": created, "data": {"object": obj},
            "livemode": False, "pending_webhooks": 1,
            "request": {"id": "req_" + "".join(rng.choice(_ALPHANUM) for _ in range(14)),
                        "idempotency_key": None}, "type": type_}


@dataclass(frozen=True)
class Plan:
    """The simulator's choice for one account."""

    profile: CustomerProfile
    kind: str
    start: datetime
    end: datetime


class StripeSimulator:
    """Chooses which accounts are Stripe customers (about 70 %), their stories, and builds them."""

    def __init__(self, seed: int, now: datetime, currency: str = "EUR", share: float = 0.7,
                 shape: str | None = None, api_version: str | None = None):
        """`shape` ("2016", "2020" or "2025", see stripe_shapes) renders every event as an
        account on an older API version receives it, labelled `api_version` (default: the
        shape's label); without it events are in the current shape, as before."""
        if shape is None and api_version is not None:
            raise ValueError("an api_version needs its shape")
        if shape is not None:
            stripe_shapes.label_for(shape, api_version)  # refuses an unknown shape or label now
        self.seed = seed
        self.now = now
        self.currency = currency.upper()
        self.share = share
        self.shape = shape
        self.api_version = api_version
        self.prices = catalog(self.currency, created=_ts(now - timedelta(days=600)))

    def _rendered(self, events: list[dict]) -> list[dict]:
        if self.shape is None:
            return events
        return stripe_shapes.render_all(events, self.shape, api_version=self.api_version,
                                        prices=[_price_obj(p) for p in self.prices.values()])

    def plan_for(self, profile: CustomerProfile) -> Plan | None:
        rng = random.Random(f"{self.seed}:stripe-plan:{profile.id}")
        if rng.random() >= self.share:
            return None
        kind = rng.choices(STORIES, list(STORY_WEIGHTS.values()))[0]
        start = profile.created_at + timedelta(minutes=rng.randint(5, 60 * 24 * 20))
        end = profile.deleted_at or self.now
        if start >= end - timedelta(hours=3):
            return None
        return Plan(profile, kind, start, end)

    def choose(self, profiles: Iterable[CustomerProfile], limit: int | None = None) -> list[Plan]:
        """The accounts with a Stripe history; with `limit`, an evenly spread subset of them."""
        plans = [p for p in (self.plan_for(profile) for profile in profiles) if p is not None]
        if limit is not None and limit <= 0:
            return []
        if limit is not None and limit < len(plans):
            step = len(plans) / limit
            plans = [plans[int(i * step)] for i in range(limit)]
        return plans

    def catalog_events(self) -> list[dict]:
        return self._rendered(price_events(self.prices, random.Random(f"{self.seed}:stripe:catalog"),
                                           _ts(self.now - timedelta(days=600))))

    def events_for(self, plan: Plan) -> list[dict]:
        rng = random.Random(f"{self.seed}:stripe-story:{plan.profile.id}")
        return self._rendered(build_story(plan.kind, plan.profile, rng, self.prices, plan.start, plan.end))

    def stream(self, plans: Iterable[Plan], on_account: Callable[[Plan, int], None] | None = None):
        """Every event of every chosen account, account by account, each account in order."""
        for plan in plans:
            events = self.events_for(plan)
            if on_account:
                on_account(plan, len(events))
            yield from events
