"""The API is its document (issue 21, part 2): Schemathesis, a fuzzer we did not write, reads
/api/v1/openapi.json, sends every operation what the document allows and what it forbids, and
checks every answer against it (`--checks all`: no 5xx, documented statuses, headers and bodies,
refused negative data, 405 with Allow, no access without the token). It runs against a live
Backoffice on 127.0.0.1 with data in it, with a fixed seed, so CI fails on any failure it finds."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from backoffice import create_app
from backoffice.api import services as api_services
from backoffice.extensions import db
from tests.conftest import scratch_database
from tests.invoicing.test_run import NOVEMBER, chf_book
from tests.stripe import helpers as h
from tests.usage.helpers import make_api

SEED = 21
MAX_EXAMPLES = 60  # per operation and phase: 5,230 cases, about 1.5 minutes on two busy cores
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")  # pip install -e '.[test]' puts it there
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _seed(app) -> str:
    """An account with a Stripe subscription (billing events), users, sessions, deployments,
    usage, a price book and November's draft invoice; answers an admin token's secret."""
    client = app.test_client()
    chf_book()
    api = make_api(client)
    api.account("acc_1", stripe_customer_id="cus_A")
    api.put("/users/usr_1", {"email": "ada@acme.example", "created_at": "2026-01-05T09:00:00Z"})
    api.put("/accounts/acc_1/members/usr_1", {"role": "owner"})
    api.put("/sessions/ses_1", {"user_id": "usr_1", "created_at": "2026-01-05T09:00:00Z"})
    api.put("/deployments/acme-prod", {"account_id": "acc_1", "plan": "team", "add_ons": ["support"],
                                       "occurred_at": "2026-11-02T00:00:00Z"})
    api.post("/usage", {"records": [{"deployment": "acme-prod", "metric": "messages_out", "quantity": 1200,
                                     "occurred_at": "2026-11-03T00:00:00Z", "idempotency_key": "k1"}]})
    h.deliver(client, h.envelope("customer.created", h.customer("cus_A", account_id="acc_1"), h.ts("2026-01-05")))
    sub = h.subscription("sub_A", "cus_A", h.price("price_team", 4900), created=h.ts("2026-01-06"))
    h.deliver(client, h.envelope("customer.subscription.created", sub, h.ts("2026-01-06")))
    _t, secret = api_services.create_token("schemathesis", "admin")
    assert client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER},
                       headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    return secret


@pytest.fixture
def served(tmp_path):
    with scratch_database(tmp_path) as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path / "instance"),
                          "SECRET_KEY": "schemathesis", "STRIPE_WEBHOOK_SECRET": h.SECRET,
                          "RATELIMIT_ENABLED": False, "PLATFORM_CURRENCY": "CHF",
                          "JOBS_IN_REQUEST": True})  # the seed's month-end run done when it answers
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            secret = _seed(app)
            db.session.remove()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        server.daemon_threads = False  # server_close() joins the request threads before the pool closes
        thread = threading.Thread(target=server.serve_forever, name="schemathesis-server", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", secret
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()
            with app.app_context():
                db.engine.dispose()


def test_the_api_answers_as_its_openapi_document_says(served, tmp_path):
    base, secret = served
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{base}/api/v1/openapi.json",
        "--url", base, "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
        "--header", f"Authorization: Bearer {secret}", "--workers", "1", "--no-color",
        "--generation-database", "none", "--request-timeout", "30",
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(done.stdout, done.stderr)  # the whole report: every failure with its curl command
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
