"""An account's billing posture (/accounts/<id>/billing): admins edit it, audited; viewers read it;
the previous release's URL under /usage redirects."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.operators.models import AuditEntry
from tests.usage.helpers import make_api

HX = {"HX-Request": "true"}


@pytest.fixture
def api(app, client):
    return make_api(client)


def test_billing_posture_admin_edit_is_audited(api, admin_client):
    api.account()
    resp = admin_client.post("/accounts/acc_1/billing", data={
        "pay_by": "invoice", "auto_invoice": "1", "payment_terms_days": "14", "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/accounts/acc_1/billing"
    account = db.session.get(Account, "acc_1")
    db.session.refresh(account)
    assert (account.pay_by, account.auto_invoice, account.auto_reminders, account.payment_terms_days) == (
        "invoice", True, False, 14)
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "account.billing_posture")
                               ).scalar_one()
    assert entry.before == {"pay_by": "card", "auto_invoice": True, "auto_reminders": True, "payment_terms_days": 30}
    assert entry.after == {"pay_by": "invoice", "auto_invoice": True, "auto_reminders": False,
                           "payment_terms_days": 14}
    bad = admin_client.post("/accounts/acc_1/billing", headers=HX, data={
        "pay_by": "invoice", "payment_terms_days": "many", "csrf_token": admin_client.csrf})
    assert bad.status_code == 422
    assert "payment_terms_days" in bad.get_data(as_text=True)
    refused = db.session.execute(sa.select(AuditEntry).where(AuditEntry.result == "error")).scalar_one()
    assert (refused.action, refused.target_id) == ("account.billing_posture", "acc_1")


def test_billing_posture_viewer_reads_only(api, viewer_client):
    api.account()
    html = viewer_client.get("/accounts/acc_1/billing").get_data(as_text=True)
    assert "Only admins can change the billing posture." in html
    resp = viewer_client.post("/accounts/acc_1/billing", data={
        "pay_by": "invoice", "payment_terms_days": "14", "csrf_token": viewer_client.csrf})
    assert resp.status_code == 403


def test_the_previous_url_redirects_with_its_method_and_query(api, admin_client):
    api.account()
    resp = admin_client.get("/usage/accounts/acc_1/billing?x=1")
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/accounts/acc_1/billing?x=1"
    assert resp.headers["Deprecation"] == "true"
    form = {"pay_by": "invoice", "auto_invoice": "1", "payment_terms_days": "7", "csrf_token": admin_client.csrf}
    moved = admin_client.post("/usage/accounts/acc_1/billing", data=form)
    assert moved.status_code == 308  # a browser sends the same POST again to the new address
    assert admin_client.post(moved.headers["Location"], data=form).status_code == 302
    assert db.session.get(Account, "acc_1").payment_terms_days == 7
