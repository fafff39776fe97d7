"""The WSGI app the ingest benchmark serves with gunicorn: the production app (configured from
the environment: DATABASE_URL, STRIPE_WEBHOOK_SECRET, SECRET_KEY) with the replay that a
webhook enqueues left out, so the figure is the webhook's own verify + archive, as in the
in-process measurement.

    gunicorn -w 1 -b 127.0.0.1:PORT tests.bench.ingest_server:app
"""
from backoffice import create_app
from backoffice.ledger import drain

drain.request_replay = lambda account_id: None
app = create_app()
