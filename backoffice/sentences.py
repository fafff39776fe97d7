"""The sentences Backoffice stores: a discrepancy's message, a job's error. They are stored in
English, as the API, the CSV and the log read them; a page shows them in the operator's language
(issue 22 part 6).

Every stored sentence is made here, by `say(TEMPLATE, **values)`, from a template listed in
`TEMPLATES`; `shown(text)` finds the template a stored text was made from (each template read as
a pattern, the values its placeholders) and answers the template's translation with the values
put back, each value translated too when it is one of the phrases below (a reason, "true"). A text
no template made (rows from before this module, an exception's own words) is shown as stored.
The values themselves (ids, plan keys, Stripe's own messages) are data and stay as they are.
"""
from __future__ import annotations

import re
from functools import cache

from flask_babel import gettext
from flask_babel import lazy_gettext as _l


def N_(template: str) -> str:
    """Marks a template for the catalogs (`backoffice i18n extract` reads N_), untranslated."""
    return template


# --- Discrepancies (DOMAIN §4)
PLAN_DIFFERS = N_("Plan: Backoffice has %(local)s, Stripe has %(live)s.")
PRICE_DIFFERS = N_("Price: Backoffice has %(local)s, Stripe has %(live)s.")
CANCEL_DIFFERS = N_("Cancel at period end: Backoffice has %(local)s, Stripe has %(live)s.")
CURRENCY_DIFFERS = N_("Currency: Backoffice has %(local)s, Stripe has %(live)s.")
NO_BILLING_EVENTS = N_("%(count)s succeeded payment(s) but no billing events: the ledger misses this "
                       "account's history.")
SCHEDULED_UNREADABLE = N_("Stripe schedules a change to %(plan)s without a price Backoffice can read.")
SCHEDULED_WITHOUT_PRICE = N_("The scheduled plan %(plan)s has no price.")
UNCLASSIFIED = N_("Stripe event %(event)s could not be classified; the ledger records it as Unclassified.")
UNREAD = N_("Stripe event %(event)s could not be read.")
NEGATIVE_EXCLUDING_TAX = N_("Invoice %(invoice)s: Stripe's amount excluding tax is negative; it is stored as 0.")
STALE_ROW = N_("The stored row of %(event)s differs from a fresh replay in %(fields)s; it is kept unchanged.")
UNRECOVERABLE = N_("Unrecoverable: %(kind)s %(id)s (%(when)s) has no event in the archive, and Stripe no "
                   "longer lists events that old.")
NOT_YET_LISTED = N_("%(kind)s %(id)s (%(when)s) has no event in the archive or Stripe's events list yet; the "
                    "next sync retries.")
LISTED_BODY_DIFFERS = N_("Stripe's events list returns %(event)s with a body that differs from the archived one.")
REDELIVERED_BODY_DIFFERS = N_("event %(event)s redelivered with a different body (sha256 %(sha)s, stored "
                              "%(stored)s)")
EVENT_REASON = N_("%(type)s %(event)s: %(reason)s")
PAYLOAD_UNREADABLE = N_("%(type)s %(event)s: the payload has no readable %(field)s (Stripe API version "
                        "%(version)s, read as the %(shape)s shape); not replayed")
EXCLUDING_TAX_CLAMPED = N_("Invoice %(invoice)s: paid %(paid)s with tax %(tax)s; amount excluding tax clamped to 0")
# the reasons of EVENT_REASON
CANCEL_AND_PLAN_CHANGE = N_("cancel toggle and plan change in one payload")
NO_SCHEDULED_PRICE = N_("no price known for scheduled %(price)s")
DEARER_SCHEDULE = N_("schedule moves to a dearer plan")

# --- Job errors (Stripe calls, drift passes)
KEY_REFUSED = N_("Stripe refused the API key (revoked, expired or not this account's: check "
                 "STRIPE_SECRET_KEY): %(message)s")
NOT_PERMITTED = N_("The API key may not do this (a restricted key lacks the permission): %(message)s")
RATE_LIMITED = N_("Stripe is limiting the requests; try again in a minute: %(message)s")
UNREACHABLE = N_("Stripe could not be reached (network or STRIPE_TIMEOUT): %(message)s")
UNKNOWN_OBJECT = N_("Stripe does not know %(object)s: %(message)s")
REQUEST_REFUSED = N_("Stripe refused the request: %(message)s")
STRIPE_ERROR = N_("Stripe answered an error: %(message)s")
UNEXPECTED = N_("Unexpected %(error)s: %(message)s (the log has the details)")
CHECKS_INCOMPLETE = N_("%(incomplete)s of %(total)s checks did not complete (%(failed)s failed or could not "
                       "reach Stripe, %(timed_out)s timed out after DRIFT_TIMEOUT); those accounts stay due. "
                       "The log names each.")

# Values that are words, translated where a sentence holds them.
PHRASES = (N_("true"), N_("false"), N_("unknown date"), N_("unknown"), N_("the object"), N_("subscription"),
           N_("invoice"), N_("refund"), N_("credit note"), CANCEL_AND_PLAN_CHANGE, NO_SCHEDULED_PRICE,
           DEARER_SCHEDULE)

TEMPLATES = (PLAN_DIFFERS, PRICE_DIFFERS, CANCEL_DIFFERS, CURRENCY_DIFFERS, NO_BILLING_EVENTS,
             SCHEDULED_UNREADABLE, SCHEDULED_WITHOUT_PRICE, UNCLASSIFIED, UNREAD, NEGATIVE_EXCLUDING_TAX,
             STALE_ROW, UNRECOVERABLE, NOT_YET_LISTED, LISTED_BODY_DIFFERS, REDELIVERED_BODY_DIFFERS,
             PAYLOAD_UNREADABLE, EXCLUDING_TAX_CLAMPED, EVENT_REASON, KEY_REFUSED, NOT_PERMITTED, RATE_LIMITED,
             UNREACHABLE, UNKNOWN_OBJECT, REQUEST_REFUSED, STRIPE_ERROR, UNEXPECTED, CHECKS_INCOMPLETE)

# The kinds of discrepancy (DOMAIN §4's names, kept in the API), as a page names them.
KIND_LABELS = {
    "SubscriptionStateMismatch": _l("State differs from Stripe"),
    "MissingEvent": _l("Billing events missing"),
    "MissingHistoricalEvent": _l("Event missing from the archive"),
    "ScheduledPriceMissing": _l("Scheduled price unknown"),
    "UnclassifiedStripeEvent": _l("Event not classified"),
    "UnreadablePayload": _l("Event unreadable"),
    "MalformedStripeEvent": _l("Event malformed"),
    "StalePersistedRow": _l("Stored row differs from a replay"),
    "AmountExcludingTaxClamped": _l("Amount excluding tax clamped"),
    "PayloadDivergence": _l("Redelivered with another body"),
}

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Values that are one word (an id, a type, a count): a sentence's word boundaries are then found
# even when a value before them holds spaces ("credit note cn_1").
_WORDS = frozenset({"id", "event", "invoice", "type", "sha", "stored", "field", "version", "shape", "price",
                    "plan", "count", "incomplete", "total", "failed", "timed_out"})


def say(template: str, **values) -> str:
    """The stored (English) sentence of a template and its values."""
    assert template in _PATTERNS or template in PHRASES, f"not a listed template: {template!r}"
    return template % {name: str(value) for name, value in values.items()}


def kind_label(kind: str) -> str:
    label = KIND_LABELS.get(kind)
    return str(label) if label is not None else kind


def shown(text: str | None) -> str:
    """A stored sentence in the current locale (as stored when no template made it)."""
    if not text:
        return text or ""
    phrase = _translated_phrase(text)
    if phrase is not None:
        return phrase
    for template, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match:
            values = {name: _translated_phrase(value) or value for name, value in match.groupdict().items()}
            return gettext(template, **values)
    return text


def _translated_phrase(value: str) -> str | None:
    for phrase, pattern in _PHRASE_PATTERNS.items():
        match = pattern.fullmatch(value)
        if match:
            return gettext(phrase, **match.groupdict())
    return None


@cache
def _pattern(template: str) -> re.Pattern:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, ...
    value = {name: rf"(?P<{name}>\S*)" if name in _WORDS else rf"(?P<{name}>.*?)" for name in parts[1::2]}
    return re.compile("".join(re.escape(part) if i % 2 == 0 else value[part] for i, part in enumerate(parts)),
                      re.DOTALL)


def _by_literal_length(templates) -> dict[str, re.Pattern]:
    """Most literal text first, so a specific template wins over a general one it also fits
    (EVENT_REASON fits every "<type> <id>: ..." sentence)."""
    return {t: _pattern(t) for t in sorted(templates, key=lambda t: -len(_PLACEHOLDER.sub("", t)))}


_PATTERNS = _by_literal_length(TEMPLATES)
_PHRASE_PATTERNS = _by_literal_length(PHRASES)
