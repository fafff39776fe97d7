"""Imports every API endpoint module so its routes register on the api blueprint.
Add one line per module (e.g. `from backoffice.api import metrics`)."""

from backoffice.api import (
    ingest,  # noqa: F401  (usage tracking: platform ingest)
    lists,  # noqa: F401  (accounts, users, billing events, invoices)
    metrics,  # noqa: F401  (dashboard numbers: /metrics/*)
    stripe,  # noqa: F401  (reconciliation: POST /accounts/<id>/sync)
)
