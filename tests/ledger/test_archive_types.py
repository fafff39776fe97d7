"""The event types the archive hands to the replayer are the ones the classifier handles, plus
the projections' types; the webhook endpoint is subscribed to exactly that list."""
from __future__ import annotations

from backoffice.ledger import archive
from backoffice.ledger.classifier import RECOGNISED_EVENT_TYPES


def test_every_type_the_classifier_handles_is_read_from_the_archive():
    assert RECOGNISED_EVENT_TYPES <= archive.CLASSIFIED_TYPES
    assert {"customer.tax_id.created", "customer.tax_id.updated", "customer.tax_id.deleted"} <= archive.HANDLED_TYPES


def test_the_webhook_event_types_are_the_handled_types_sorted():
    assert archive.WEBHOOK_EVENT_TYPES == tuple(sorted(archive.HANDLED_TYPES))
    assert len(archive.WEBHOOK_EVENT_TYPES) == 30
