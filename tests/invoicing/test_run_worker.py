"""The month-end run fanned out over a real Celery worker with a real Redis broker: the API
answers 202 with the run started, the batches run on the worker, one summary is written at the end."""
from __future__ import annotations

import os
import time
from decimal import Decimal

import pytest

from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.invoicing import run
from backoffice.invoicing.models import InvoicingRun, PlatformInvoice
from tests.invoicing.test_run import NOVEMBER, chf_book
from tests.invoicing.test_run_concurrency import ACCOUNTS, _accounts
from tests.stripe.conftest import running_worker
from tests.stripe.test_worker import REDIS_URL, _redis_available, broker_app  # noqa: F401  (fixture)


@pytest.mark.skipif(not _redis_available(), reason="needs Redis at " + REDIS_URL)
def test_with_a_broker_the_run_fans_out_and_writes_one_summary(broker_app, app_config, tmp_path, monkeypatch):  # noqa: F811
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "CELERY_BROKER_URL": REDIS_URL,
           "SECRET_KEY": "worker-test", "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "worker"),
           "BACKOFFICE_CURRENCY": "CHF"}
    monkeypatch.setattr(run, "BATCH_ACCOUNTS", 16)  # the web process splits the accounts: 4 batches
    with running_worker(env, tmp_path / "worker.log", "--concurrency", "2", "--no-beat"), broker_app.app_context():
        chf_book()
        _accounts()
        _token, secret = api_services.create_token("ops", "admin")
        client = broker_app.test_client()
        resp = client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER},
                           headers={"Authorization": f"Bearer {secret}"})
        assert resp.status_code == 202, resp.get_json()
        assert resp.get_json()["status"] == "running" and resp.get_json()["summary"] is None
        run_id = int(resp.get_json()["id"])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            db.session.rollback()
            found = db.session.get(InvoicingRun, run_id)
            if found.status != "running":
                break
            time.sleep(0.2)
        assert found.status == "done", (tmp_path / "worker.log").read_text()[-3000:]
        assert (found.examined, found.created, found.skipped, found.failed) == (ACCOUNTS, ACCOUNTS, 0, 0)
        assert found.summary["totals"] == {"CHF": str(ACCOUNTS * Decimal("52.97"))}  # 49.00 + 3.97 VAT each
        assert db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoice)) == ACCOUNTS
        log = (tmp_path / "worker.log").read_text()
        assert log.count("Task invoicing.run_batch[") == 2 * 4  # received and succeeded, 4 batches
        assert log.count("Task invoicing.finish_run[") == 2
        db.session.remove()
