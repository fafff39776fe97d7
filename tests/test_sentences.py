"""Stored sentences (discrepancies, job errors) are stored in English and shown in the operator's
language (issue 22 part 6): each is made from a listed template, and a page finds the template
back from the stored text."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import stripe
from flask_babel import force_locale

from backoffice import sentences
from backoffice.sentences import say, shown


def _filled(template: str) -> tuple[str, dict]:
    values = {name: f"v{i}_{name}" for i, name in enumerate(re.findall(r"%\((\w+)\)s", template))}
    return say(template, **values), values


@pytest.mark.parametrize("template", sentences.TEMPLATES + sentences.PHRASES)
def test_every_template_reads_back_in_english_and_in_german(app, template):
    text, values = _filled(template)
    with app.test_request_context(), force_locale("en"):
        assert shown(text) == text
    with app.test_request_context(), force_locale("de"):
        german = shown(text)
    if template != sentences.EVENT_REASON:  # "<type> <id>: <reason>" is the same in German
        assert german != text, f"no German for {template!r}"
    assert "%(" not in german and all(value in german for value in values.values())


def test_a_sentence_holding_a_phrase_is_translated_whole(app):
    """A reason inside a sentence, true/false, a resource kind: translated with it."""
    why = say(sentences.NO_SCHEDULED_PRICE, price="price_pro_y")
    text = say(sentences.EVENT_REASON, type="customer.subscription.updated", event="evt_1", reason=why)
    cancel = say(sentences.CANCEL_DIFFERS, local="true", live="false")
    lost = say(sentences.UNRECOVERABLE, kind="credit note", id="cn_1", when="2025-01-03")
    with app.test_request_context(), force_locale("de"):
        assert shown(text) == "customer.subscription.updated evt_1: kein Preis bekannt für geplantes price_pro_y"
        assert shown(cancel) == "Kündigung zum Periodenende: in Backoffice ja, bei Stripe nein."
        assert shown(lost).startswith("Nicht wiederherstellbar: Gutschrift cn_1 (2025-01-03) hat kein Ereignis")
        assert shown("Stripe says past_due") == "Stripe says past_due"  # no template made it: as stored
        assert shown(None) == ""


def test_what_the_code_stores_is_shown_in_german(app):
    """The real makers of sentences: a state mismatch, a payload the replay cannot read, a Stripe
    refusal, a drift pass with failed checks."""
    import dataclasses

    from backoffice.extensions import db
    from backoffice.ledger import readers
    from backoffice.ledger.classifier import unreadable_discrepancy
    from backoffice.stripe import drift, gateway, tasks
    from backoffice.stripe.models import JobRun

    local = drift.LedgerState(known=True, plan="pro", price=Decimal("49.00"), cancel_at_period_end=False,
                              currency="EUR")
    live = dataclasses.replace(readers.NO_SUBSCRIPTION, plan="team", price=Decimal("99.00"),
                               cancel_at_period_end=True, currency="EUR")
    mismatch = [f.message for f in drift._state_mismatch(local, live)]
    exc = readers.UnreadablePayload("invoice.paid", "data.object.lines", "2016-03-07")
    unreadable = unreadable_discrepancy("evt_1", exc).message
    refused = gateway.describe_error(stripe.AuthenticationError("Invalid API Key provided: sk_test_***"))
    run = JobRun(kind="drift_pass", status="running", total=10, processed=7, skipped=0, failed=2, timed_out=1)
    db.session.add(run)
    tasks._judge(run)
    assert mismatch == ["Plan: Backoffice has pro, Stripe has team.", "Price: Backoffice has 49.00, Stripe has 99.00.",
                        "Cancel at period end: Backoffice has false, Stripe has true."]
    with app.test_request_context(), force_locale("de"):
        assert [shown(m) for m in mismatch] == ["Plan: in Backoffice pro, bei Stripe team.",
                                                "Preis: in Backoffice 49.00, bei Stripe 99.00.",
                                                "Kündigung zum Periodenende: in Backoffice nein, bei Stripe ja."]
        assert shown(unreadable).startswith("invoice.paid evt_1: im Inhalt ist data.object.lines nicht lesbar")
        assert shown(refused) == ("Stripe lehnte den API-Schlüssel ab (widerrufen, abgelaufen oder von einem anderen "
                                  "Konto: STRIPE_SECRET_KEY prüfen): Invalid API Key provided: sk_test_***")
        assert shown(run.error).startswith("3 von 10 Prüfungen wurden nicht abgeschlossen")
        assert sentences.kind_label("SubscriptionStateMismatch") == "Zustand weicht von Stripe ab"
        assert sentences.kind_label("SomethingNew") == "SomethingNew"


def test_say_refuses_a_template_that_is_not_listed():
    with pytest.raises(AssertionError):
        say("Plan %(x)s is new.", x="pro")
