"""The Stripe gateway: the one module that imports `stripe`.

Everything else talks to Stripe through `StripeGateway`, which answers the JSON Stripe sent as
plain dicts (never `StripeObject`s, whose `*_decimal` fields stripe-python turns into Decimal),
retries 429 and 5xx with exponential backoff and jitter, and turns an outage into one exception,
`StripeUnavailable`, that the services treat as an expected state.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import stripe
from flask import current_app

from backoffice.ledger import readers
from backoffice.sentences import (
    KEY_REFUSED,
    NOT_PERMITTED,
    RATE_LIMITED,
    REQUEST_REFUSED,
    STRIPE_ERROR,
    UNEXPECTED,
    UNKNOWN_OBJECT,
    UNREACHABLE,
    say,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds per HTTP request
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5  # seconds, doubled per attempt
MAX_BACKOFF = 8.0
PAGE_SIZE = 100
API_VERSION = stripe.api_version  # the Stripe-Version this client sends (stripe 16.1: 2026-10-28.endive)


class StripeNotConfigured(Exception):
    """No STRIPE_SECRET_KEY: reconciliation cannot run."""


class StripeUnavailable(Exception):
    """Stripe could not be reached or kept failing (timeouts, 429, 5xx, a page that failed)."""


MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is not waited out in a request or a job


def _retry_after(e: stripe.StripeError) -> float:
    """The wait Stripe asked for (a 429's or 503's Retry-After header, in seconds), at most
    MAX_RETRY_AFTER; 0 when it named none."""
    headers = getattr(e, "headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


def describe_error(e: BaseException) -> str:
    """What went wrong with a Stripe call, in words an operator can act on (the job's error,
    the audit entry), never a bare exception class name."""
    message = getattr(e, "user_message", None) or str(e) or type(e).__name__
    if isinstance(e, StripeUnavailable):  # the refusal it wraps says more than "unavailable"
        cause = e.__cause__
        if isinstance(cause, stripe.AuthenticationError | stripe.PermissionError | stripe.InvalidRequestError):
            return describe_error(cause)
        return str(e)
    if isinstance(e, stripe.AuthenticationError):
        return say(KEY_REFUSED, message=message)
    if isinstance(e, stripe.PermissionError):
        return say(NOT_PERMITTED, message=message)
    if isinstance(e, stripe.RateLimitError):
        return say(RATE_LIMITED, message=message)
    if isinstance(e, stripe.APIConnectionError):
        return say(UNREACHABLE, message=message)
    if isinstance(e, stripe.InvalidRequestError):
        if getattr(e, "code", None) == "resource_missing":
            return say(UNKNOWN_OBJECT, object=getattr(e, "param", None) or "the object", message=message)
        return say(REQUEST_REFUSED, message=message)
    if isinstance(e, stripe.StripeError):
        return say(STRIPE_ERROR, message=message)
    return say(UNEXPECTED, error=type(e).__name__, message=message)


def verify_webhook(body: bytes | str, header: str | None, secrets: str | Sequence[str],
                   tolerance: int = 300) -> dict:
    """Checks `Stripe-Signature` before anything is parsed; answers the event as a dict.

    `secrets`: one or several (STRIPE_WEBHOOK_SECRET, parsed): a signature valid for any of
    them verifies, so a secret can roll and endpoints can share the URL.
    Raises ValueError for a missing or invalid signature or an unparsable body.
    """
    secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    secrets = tuple(s for s in secrets if s)
    if not header or not secrets:
        raise ValueError("missing Stripe-Signature header or webhook secret")
    payload = body.decode("utf-8") if isinstance(body, bytes) else body
    for i, secret in enumerate(secrets):
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            break
        except stripe.SignatureVerificationError as e:
            if i == len(secrets) - 1:
                raise ValueError(str(e)) from e
    return readers.parse_payload(body, payload)


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A valid `Stripe-Signature` for `payload` (tests, the demo's Stripe simulator)."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


def event_customer(event: dict) -> str | None:
    """The Stripe customer an event is about (Stripe cannot filter events.list by customer)."""
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return customer.get("id")
    return customer


def _to_timestamp(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.astimezone(UTC).timestamp())


class StripeGateway:
    """Reads from Stripe. One instance per app (thread-safe: the client holds no request state)."""

    def __init__(self, api_key: str, api_base: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep):
        if not api_key:
            raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
        kwargs: dict = {
            # Our own retry loop (below) owns backoff and jitter; stripe's would multiply it.
            "max_network_retries": 0,
            "http_client": stripe.RequestsClient(timeout=timeout),
        }
        if api_base:
            kwargs["base_addresses"] = {"api": api_base.rstrip("/")}
        self.client = stripe.StripeClient(api_key, **kwargs)
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        self.calls = 0  # requests made (benchmarks report it)

    @classmethod
    def from_config(cls, config) -> StripeGateway:
        return cls(
            config.get("STRIPE_SECRET_KEY") or "",
            config.get("STRIPE_API_BASE") or None,
            timeout=float(config.get("STRIPE_TIMEOUT", DEFAULT_TIMEOUT)),
            max_retries=int(config.get("STRIPE_MAX_RETRIES", DEFAULT_RETRIES)),
            backoff=float(config.get("STRIPE_RETRY_BACKOFF", DEFAULT_BACKOFF)),
        )

    # -- the retry loop -------------------------------------------------------------------------
    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter: a random wait in [base/2, base] of this attempt."""
        base = min(MAX_BACKOFF, self.backoff * (2 ** attempt))
        return base / 2 + random.uniform(0, base / 2)

    @staticmethod
    def _retryable(e: stripe.StripeError) -> bool:
        if isinstance(e, (stripe.RateLimitError, stripe.APIConnectionError)):
            return True
        status = getattr(e, "http_status", None)
        return status is None or status == 429 or status >= 500

    def _call(self, fn: Callable, *args):
        attempt = 0
        while True:
            self.calls += 1
            try:
                return fn(*args)
            except stripe.AuthenticationError as e:
                raise StripeUnavailable(f"Stripe refused the API key: {e.user_message or e}") from e
            except stripe.StripeError as e:
                if not self._retryable(e):
                    raise
                if attempt >= self.max_retries:
                    raise StripeUnavailable(f"Stripe is unavailable: {e.user_message or e}") from e
                delay = max(self._delay(attempt), _retry_after(e))
                log.warning("stripe: %s, retry %d in %.2fs", type(e).__name__, attempt + 1, delay)
                self.sleep(delay)
                attempt += 1

    def _list(self, service, params: dict) -> Iterator[dict]:
        """Every item of a list endpoint, page by page (`starting_after`). A failed page raises
        StripeUnavailable, so a caller never mistakes a partial list for a complete one."""
        params = {**params, "limit": PAGE_SIZE}
        while True:
            page = _sent(self._call(service.list, params))
            items = page["data"]
            yield from items
            if not page["has_more"] or not items:
                return
            params = {**params, "starting_after": items[-1]["id"]}

    def _retrieve(self, service, object_id: str) -> dict | None:
        try:
            return _sent(self._call(service.retrieve, object_id))
        except stripe.InvalidRequestError as e:
            if getattr(e, "http_status", None) == 404:
                return None
            raise StripeUnavailable(str(e)) from e
        except stripe.APIError as e:  # a server without this resource answers a bare 404
            if getattr(e, "http_status", None) == 404:
                return None
            raise

    def _list_optional(self, service, params: dict) -> list[dict]:
        """A list endpoint some Stripe-compatible servers lack (credit notes, schedules): empty."""
        try:
            return list(self._list(service, params))
        except (stripe.APIError, stripe.InvalidRequestError) as e:
            if getattr(e, "http_status", None) == 404:
                return []
            raise StripeUnavailable(str(e)) from e

    # -- events ---------------------------------------------------------------------------------
    def events(self, since: datetime | None = None) -> list[dict]:
        """Every event created at or after `since`, oldest first (created, then id).

        Stripe lists newest first and keeps 30 days; the whole pull is collected before it is
        answered, so a page that fails midway raises and nothing partial leaks out.
        """
        params: dict = {}
        if since is not None:
            params["created"] = {"gte": _to_timestamp(since)}
        events = list(self._list(self.client.v1.events, params))
        events.sort(key=lambda e: (e["created"], e["id"]))
        return events

    def events_since(self, customer_id: str, anchor: datetime | None) -> list[dict]:
        """The customer's events from the anchor (inclusive), chronological."""
        return [e for e in self.events(anchor) if event_customer(e) == customer_id]

    # -- resources ------------------------------------------------------------------------------
    def customer(self, customer_id: str) -> dict | None:
        return self._retrieve(self.client.v1.customers, customer_id)

    def customers(self) -> Iterator[dict]:
        return self._list(self.client.v1.customers, {})

    def subscriptions(self, customer_id: str) -> list[dict]:
        return list(self._list(self.client.v1.subscriptions, {"customer": customer_id, "status": "all"}))

    def subscription_schedule(self, schedule_id: str) -> dict | None:
        return self._retrieve(self.client.v1.subscription_schedules, schedule_id)

    def invoices(self, customer_id: str) -> list[dict]:
        return list(self._list(self.client.v1.invoices, {"customer": customer_id}))

    def charges(self, customer_id: str) -> list[dict]:
        return list(self._list(self.client.v1.charges, {"customer": customer_id}))

    def refunds(self, charge_id: str) -> list[dict]:
        return list(self._list(self.client.v1.refunds, {"charge": charge_id}))

    def credit_notes(self, customer_id: str) -> list[dict]:
        return self._list_optional(self.client.v1.credit_notes, {"customer": customer_id})

    def price(self, price_id: str) -> dict | None:
        """A price Backoffice has not seen in any event (a schedule names prices by id only)."""
        return self._retrieve(self.client.v1.prices, price_id)

    # -- webhook endpoints (`backoffice stripe connect`) -----------------------------------------
    def create_webhook_endpoint(self, url: str, events: Sequence[str], description: str = "Backoffice") -> dict:
        """Creates the endpoint Stripe delivers `events` to; its `secret` is in this answer only.
        One idempotency key for every retry, so a retried create never makes a second endpoint.
        Raises ValueError when Stripe refuses the request, StripeUnavailable as every call does."""
        params = {"url": url, "enabled_events": list(events), "description": description}
        options = {"idempotency_key": f"backoffice-connect-{uuid.uuid4()}"}
        try:
            return _sent(self._call(lambda: self.client.v1.webhook_endpoints.create(params, options)))
        except stripe.StripeError as e:  # not retried: a bad URL or event type, a restricted key
            raise ValueError(f"Stripe refused the endpoint: {e.user_message or e}") from e


def _sent(obj: stripe.StripeObject) -> dict:
    """The response's body as Stripe sent it, parsed as the webhook parses events: the client's
    objects hold Decimals (`unit_amount_decimal`: json cannot write them, and the archive must keep
    Stripe's string "4900") and are not dicts since stripe 16."""
    body = obj.last_response.body
    return readers.parse_payload(body)


def get_gateway() -> StripeGateway:
    """The app's gateway (tests may put their own in app.extensions['stripe_gateway'])."""
    gateway = current_app.extensions.get("stripe_gateway")
    if gateway is None:
        gateway = StripeGateway.from_config(current_app.config)
        current_app.extensions["stripe_gateway"] = gateway
    return gateway


def is_configured() -> bool:
    return bool(current_app.extensions.get("stripe_gateway") or current_app.config.get("STRIPE_SECRET_KEY"))
