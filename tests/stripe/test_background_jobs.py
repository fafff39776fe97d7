"""Syncs and disaster recoveries never hold a web thread (issue 21 part 4): without a broker they
run on the web process's background pool (`jobs.in_background`), and the page and the API poll
their job row. Here Stripe is a loopback server that holds every request until the test lets it
answer, so a sync that ran in the request could not have answered first."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.operators.models import AuditEntry
from backoffice.stripe.gateway import StripeGateway
from backoffice.stripe.models import JobRun
from tests.factories import AccountFactory
from tests.stripe.conftest import API_KEY

HX = {"HX-Request": "true"}

REVOKED = {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****2026"}}


class HeldStripe:
    """Answers every request with 401 (a revoked key) once `release` is set; counts who waits."""

    def __init__(self):
        self.release = threading.Event()
        self.waiting = 0
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                held.waiting += 1
                held.release.wait(20)
                body = json.dumps(REVOKED).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for_a_request(self, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not self.waiting and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.waiting, "the job never called Stripe"

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_stripe(app):
    """The app pointed at a Stripe that holds its answers, with jobs off the request (as users run it)."""
    server = HeldStripe()
    app.config.update(STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE=server.url, JOBS_IN_REQUEST=False)
    app.extensions["stripe_gateway"] = StripeGateway(API_KEY, server.url, timeout=30, max_retries=0)
    AccountFactory(id="acc_1", stripe_customer_id="cus_1")
    db.session.commit()
    try:
        yield server
    finally:
        server.stop()


def _finished(run_id: int, seconds: float = 15) -> JobRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.expire_all()
        run = db.session.get(JobRun, run_id)
        if run.status in ("done", "failed"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"job {run_id} still {run.status}")


def test_a_sync_from_the_page_answers_while_stripe_still_holds_it(held_stripe, admin_client):
    started = time.monotonic()
    resp = admin_client.post("/stripe/accounts/acc_1/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})
    answered = time.monotonic() - started
    held_stripe.wait_for_a_request()

    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and answered < 5
    assert "Syncing with Stripe…" in html and 'hx-trigger="every 1s"' in html
    run = db.session.execute(db.select(JobRun)).scalar_one()
    assert run.status in ("queued", "running") and held_stripe.waiting == 1  # Stripe has not answered yet
    # The web thread is free: other pages answer while the sync waits for Stripe.
    assert admin_client.get("/stripe/jobs").status_code == 200

    held_stripe.release.set()
    run = _finished(run.id)
    assert run.status == "failed"
    assert run.error.startswith("Stripe refused the API key (revoked, expired or not this account's")
    polled = admin_client.get(f"/stripe/syncs/{run.id}", headers=HX).get_data(as_text=True)
    assert "The sync did not complete" in polled and "Stripe refused the API key" in polled
    assert "every 1s" not in polled  # the dialog stops polling
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "stripe.sync")).scalar_one()
    assert (entry.operator_email, entry.result, entry.target_id) == ("admin@example.com", "error", "acc_1")
    # The account's Drift tab shows the job and its result.
    tab = admin_client.get("/accounts/acc_1/drift").get_data(as_text=True)
    assert "Syncs and recoveries" in tab and "Stripe refused the API key" in tab


def test_an_api_sync_answers_202_at_once_and_the_job_is_polled(held_stripe, client):
    _t, secret = api_services.create_token("ops", "admin")
    auth = {"Authorization": f"Bearer {secret}"}

    started = time.monotonic()
    resp = client.post("/api/v1/accounts/acc_1/sync", headers=auth)
    answered = time.monotonic() - started
    held_stripe.wait_for_a_request()

    job = resp.get_json()
    assert (resp.status_code, job["kind"], job["status"] in ("queued", "running"), job["result"]) == (
        202, "account_sync", True, None)
    assert answered < 5 and held_stripe.waiting == 1
    assert resp.headers["Location"] == f"/api/v1/jobs/{job['id']}"

    held_stripe.release.set()
    _finished(int(job["id"]))
    polled = client.get(resp.headers["Location"], headers=auth).get_json()
    assert (polled["status"], polled["result"]) == ("failed", None)
    assert polled["error"].startswith("Stripe refused the API key") and polled["finished_at"].endswith("Z")


def test_a_recovery_from_the_page_runs_in_the_background_and_its_dialog_polls(app, admin_client):
    app.config["JOBS_IN_REQUEST"] = False
    AccountFactory(id="acc_1")
    db.session.commit()

    resp = admin_client.post("/stripe/accounts/acc_1/disaster-recovery",
                             headers={**HX, "X-CSRFToken": admin_client.csrf})
    run = db.session.execute(db.select(JobRun).where(JobRun.kind == "disaster_recovery")).scalar_one()
    assert resp.status_code == 200
    run = _finished(run.id)
    assert (run.status, run.result["events_appended"], run.actor_email) == ("done", 0, "admin@example.com")
    html = admin_client.get(f"/stripe/recoveries/{run.id}", headers=HX).get_data(as_text=True)
    assert "Disaster recovery complete" in html and "0 billing events appended." in html
    assert admin_client.get(f"/stripe/syncs/{run.id}").status_code == 404  # a recovery is no sync


def test_without_javascript_a_recovery_redirects_to_its_status_page(app, admin_client):
    AccountFactory(id="acc_1")
    db.session.commit()
    resp = admin_client.post("/stripe/accounts/acc_1/disaster-recovery", data={"csrf_token": admin_client.csrf})
    run = db.session.execute(db.select(JobRun)).scalar_one()
    assert (resp.status_code, resp.headers["Location"]) == (303, f"/stripe/recoveries/{run.id}")
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Disaster recovery complete" in page
