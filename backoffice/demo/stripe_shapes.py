"""Renders the simulator's current-shape Stripe events as accounts on older API versions get them.

Accounts pinned to an old `api_version` receive every event in their own version's shape, so the
simulator's life stories are worth replaying in each shape the ledger reads (DOMAIN §3). The
fields the readers look at have three shapes, with boundaries at `2020-08-27` and
`2025-03-31.basil`:

- "2016" (before 2020-08-27): subscription items carry a `plan` object only (events written before
  the Prices API), the subscription repeats it at its top level with `quantity`, its period is at
  its top level; schedule phases list `plans`; an invoice names `subscription` and `charge` at its
  top level, its tax is `tax` plus `total_tax_amounts`, its lines carry `plan`.
- "2020" (2020-08-27 up to basil): as above, but items and invoice lines carry `price` beside
  `plan`, phases list `items`, and the top-level `plan`/`quantity` are gone.
- "2025" (basil and later): what the simulator writes (periods on items, `parent`, `total_taxes`,
  `pricing`, payments in `invoice.payments`, no `charge.invoice`).

Facts as public sources show them: stripe/openapi `openapi/fixtures3.json` (before and after its
2025-03-25 basil update: `invoice.charge`, `tax`, `total_tax_amounts`, `paid`, line `price`/`plan`,
`charge.invoice` and `credit_note.refund` disappear; items gain `current_period_end`),
`openapi/spec3.json` at 2020-03-02 and 2020-08-27 (phases `plans` → `items`; top-level
subscription `plan`/`quantity` removed), dj-stripe `tests/__init__.py` (2016-03-07 payloads:
top-level `plan`/`quantity`, invoice `charge`/`subscription`/`tax`), and Stripe's changelog (2020-08-27
customers no longer include `tax_ids`, 2022-11-15 charges no longer include `refunds`).

Pure: plain dicts in, new plain dicts out; the input is never changed.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from backoffice.ledger.readers import api_version_date, shape_of

SHAPES = ("2016", "2020", "2025")
# The label each shape is rendered with unless the caller names one.
LABELS = {"2016": "2019-12-03", "2020": "2024-06-20", "2025": "2025-04-30.basil"}
_CUSTOMER_TAX_IDS_DROPPED = "2020-08-27"
_CHARGE_REFUNDS_DROPPED = "2022-11-15"


def label_date(api_version: str) -> str:
    """The date of an API version label, read as the payload readers read it (readers.shape_of
    is the one rule of which shape a label renders): "2020-08-27; orders_beta=v3" → "2020-08-27"."""
    day = api_version_date(api_version)
    return day.isoformat() if day else ""


def label_for(shape: str, api_version: str | None = None) -> str:
    """The label events of `shape` are sent with; refuses a label of another shape."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    label = api_version or LABELS[shape]
    if shape_of(label) != shape:
        raise ValueError(f"{label!r} is not a label of the {shape} shape")
    return label


@dataclass(frozen=True)
class StoryIndex:
    """What one event's rendering needs from the rest of its story: the price objects (an old
    invoice line embeds the whole price), and the charge and invoice of each payment intent (an
    old invoice names its charge, an old charge its invoice)."""

    prices: Mapping[str, dict] = field(default_factory=dict)
    charges: Mapping[str, str] = field(default_factory=dict)
    invoices: Mapping[str, str] = field(default_factory=dict)


def index_of(events: Iterable[dict], prices: Iterable[dict] = ()) -> StoryIndex:
    """The prices, charges and invoices named anywhere in `events` (plus the given prices)."""
    found = {p["id"]: p for p in prices}
    charges: dict[str, str] = {}
    invoices: dict[str, str] = {}
    for event in events:
        obj = event["data"]["object"]
        kind = obj.get("object")
        if kind == "price":
            found.setdefault(obj["id"], obj)
        elif kind == "subscription":
            for item in (obj.get("items") or {}).get("data") or []:
                if isinstance(item.get("price"), dict):
                    found.setdefault(item["price"]["id"], item["price"])
        elif kind == "charge" and isinstance(obj.get("payment_intent"), str):
            charges[obj["payment_intent"]] = obj["id"]
        elif kind == "invoice":
            for payment in (obj.get("payments") or {}).get("data") or []:
                intent = (payment.get("payment") or {}).get("payment_intent")
                if intent:
                    invoices[intent] = obj["id"]
    return StoryIndex(found, charges, invoices)


def render_all(events: Iterable[dict], shape: str, *, api_version: str | None = None,
               prices: Iterable[dict] = ()) -> list[dict]:
    """A story's events rendered in `shape`, each with the story's index."""
    events = list(events)
    index = index_of(events, prices)
    return [render(event, shape, api_version=api_version, index=index) for event in events]


def render(event: dict, shape: str, *, api_version: str | None = None, index: StoryIndex | None = None) -> dict:
    """One current-shape event envelope as an account on `api_version` (default: the shape's
    label) receives it."""
    label = label_for(shape, api_version)
    index = index or StoryIndex()
    event = copy.deepcopy(event)
    event["api_version"] = label
    data = event["data"]
    obj, previous = data["object"], data.get("previous_attributes")
    kind = obj.get("object")
    date = label_date(label)
    if kind == "charge" and date >= _CHARGE_REFUNDS_DROPPED:
        obj.pop("refunds", None)
        if previous:
            previous.pop("refunds", None)
    if shape == "2025":
        return event
    if kind == "subscription":
        _old_subscription(obj, previous, shape)
    elif kind == "subscription_schedule":
        _old_schedule(obj, shape)
        if previous and isinstance(previous.get("phases"), list):
            _old_schedule(previous, shape)
    elif kind == "invoice":
        _old_invoice(obj, shape, index)
    elif kind == "charge":
        obj["invoice"] = index.invoices.get(obj.get("payment_intent"))
    elif kind == "credit_note":
        _old_credit_note(obj)
    elif kind == "customer":
        if date >= _CUSTOMER_TAX_IDS_DROPPED:
            obj.pop("tax_ids", None)
        else:
            obj["sources"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                              "url": f"/v1/customers/{obj['id']}/sources"}
    elif kind == "price" and shape == "2016":
        event["type"] = event["type"].replace("price.", "plan.", 1)
        data["object"] = plan_of(obj)
    return event


def plan_of(price: dict) -> dict:
    """The `plan` object Stripe mirrors a recurring price as (plans came first; a price kept one)."""
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"], "object": "plan", "active": price.get("active", True), "aggregate_usage": None,
        "amount": price.get("unit_amount"), "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": price.get("billing_scheme", "per_unit"), "created": price.get("created"),
        "currency": price.get("currency"), "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1), "livemode": price.get("livemode", False),
        "metadata": dict(price.get("metadata") or {}), "nickname": price.get("nickname"),
        "product": price.get("product"), "tiers_mode": price.get("tiers_mode"), "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


# -- subscriptions ------------------------------------------------------------------------------
def _old_items(items: dict, shape: str) -> tuple[int | None, int | None]:
    """Strips the per-item periods (returned: the first item's) and, for 2016, the prices."""
    start = end = None
    for n, item in enumerate(items.get("data") or []):
        item_start, item_end = item.pop("current_period_start", None), item.pop("current_period_end", None)
        if n == 0:
            start, end = item_start, item_end
        price = item.get("price")
        if isinstance(price, dict) and not isinstance(item.get("plan"), dict):
            item["plan"] = plan_of(price)
        if shape == "2016":
            item.pop("price", None)
    return start, end


def _old_subscription(obj: dict, previous: dict | None, shape: str) -> None:
    obj.pop("billing_mode", None)
    start, end = _old_items(obj["items"], shape)
    obj["current_period_start"], obj["current_period_end"] = start, end
    first = (obj["items"].get("data") or [None])[0]
    if shape == "2016" and first is not None:
        obj["plan"], obj["quantity"] = copy.deepcopy(first["plan"]), first.get("quantity")
    if not previous or "items" not in previous:
        return
    old_start, old_end = _old_items(previous["items"], shape)
    if (old_start, old_end) != (start, end):
        # Before basil a new period shows as the subscription's own period changing.
        previous["current_period_start"], previous["current_period_end"] = old_start, old_end
    old_first = (previous["items"].get("data") or [None])[0]
    if previous["items"] == obj["items"]:
        del previous["items"]  # only the periods changed: the items did not
    elif shape == "2016" and old_first is not None and first is not None:
        if old_first.get("plan") != first.get("plan"):
            previous["plan"] = copy.deepcopy(old_first["plan"])
        if old_first.get("quantity") != first.get("quantity"):
            previous["quantity"] = old_first.get("quantity")


def _old_schedule(obj: dict, shape: str) -> None:
    for phase in obj.get("phases") or []:
        if shape == "2016":
            phase["plans"] = [{"billing_thresholds": item.get("billing_thresholds"),
                               "plan": item.get("plan") or item.get("price"),
                               "quantity": item.get("quantity"), "tax_rates": item.get("tax_rates", [])}
                              for item in phase.pop("items", None) or []]


# -- invoices, credit notes -----------------------------------------------------------------------
def _tax_amounts(taxes: list[dict] | None) -> list[dict]:
    return [{"amount": t["amount"], "inclusive": t.get("tax_behavior") == "inclusive",
             "tax_rate": (t.get("tax_rate_details") or {}).get("tax_rate"),
             "taxability_reason": t.get("taxability_reason"), "taxable_amount": t.get("taxable_amount")}
            for t in taxes or []]


def _old_invoice(obj: dict, shape: str, index: StoryIndex) -> None:
    parent = obj.pop("parent", None) or {}
    details = parent.get("subscription_details") or {}
    obj["subscription"] = details.get("subscription")
    obj["subscription_details"] = {"metadata": details.get("metadata")}
    taxes = obj.pop("total_taxes", None) or []
    obj["tax"] = sum(t["amount"] for t in taxes) if taxes else None
    obj["total_tax_amounts"] = _tax_amounts(taxes)
    payments = (obj.pop("payments", None) or {}).get("data") or []
    intent = next(((p.get("payment") or {}).get("payment_intent") for p in payments
                   if p.get("status") == "paid"), None)
    # A charge of a payment intent shares its id's tail (pi_3Abc… → ch_3Abc…).
    obj["charge"] = (index.charges.get(intent) or "ch_" + intent.split("_", 1)[1]) if intent else None
    obj["payment_intent"] = intent
    obj["paid"] = obj.get("status") == "paid"
    for line in (obj.get("lines") or {}).get("data") or []:
        _old_line(line, shape, index)


def _old_line(line: dict, shape: str, index: StoryIndex) -> None:
    parent = line.pop("parent", None) or {}
    item = parent.get("subscription_item_details") or {}
    pricing = line.pop("pricing", None) or {}
    price_id = (pricing.get("price_details") or {}).get("price")
    price = index.prices.get(price_id)
    if price is None and price_id is not None:
        raise KeyError(f"price {price_id} of line {line.get('id')} is not in the story's index")
    line["type"] = "subscription" if item else "invoiceitem"
    line["proration"] = bool(item.get("proration"))
    line["subscription"] = item.get("subscription")
    line["subscription_item"] = item.get("subscription_item")
    line["plan"] = plan_of(price) if price is not None else None
    if shape == "2020":
        line["price"] = copy.deepcopy(price)
    line["tax_amounts"] = _tax_amounts(line.pop("taxes", None))


def _old_credit_note(obj: dict) -> None:
    refunds = obj.pop("refunds", None) or []
    obj["refund"] = refunds[0]["refund"] if refunds else None
    obj["tax_amounts"] = _tax_amounts(obj.pop("total_taxes", None))
    for line in (obj.get("lines") or {}).get("data") or []:
        line["tax_amounts"] = _tax_amounts(line.pop("taxes", None))
