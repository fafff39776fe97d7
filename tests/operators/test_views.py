"""Operator management (invite, accept, change role, deactivate) and the audit log page."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from backoffice.extensions import db
from backoffice.operators import services
from backoffice.operators.models import AuditEntry, Operator
from tests.conftest import PASSWORD, csrf_from, make_operator, sign_in

HX = {"HX-Request": "true"}


def _audit() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars())


def _rows(html: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.DOTALL)
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.DOTALL) if body else []


def _operator(email: str) -> Operator:
    db.session.expire_all()
    return db.session.execute(db.select(Operator).where(Operator.email == email)).scalar_one()


# --- the operator list --------------------------------------------------------------------------

def test_operator_list_is_for_admins(admin_client, admin):
    make_operator("viewer@example.com", "viewer")
    html = admin_client.get("/operators").get_data(as_text=True)
    assert [re.search(r"<td>([^<]+)</td>", r).group(1) for r in _rows(html)] == [
        "admin@example.com", "viewer@example.com"]
    assert "Invite an operator" in html


def test_viewer_cannot_see_operators_or_audit(viewer_client):
    assert viewer_client.get("/operators").status_code == 403
    assert viewer_client.get("/operators/audit").status_code == 403
    assert "Operators" not in viewer_client.get("/").get_data(as_text=True)


# --- invite → accept ----------------------------------------------------------------------------

def _invite(admin_client, email="new@example.com", role="viewer"):
    return admin_client.post("/operators/invite", data={"email": email, "role": role,
                                                        "csrf_token": admin_client.csrf})


def test_invite_then_accept(admin_client, admin, app):
    resp = _invite(admin_client, "New@Example.com", "viewer")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/operators"
    html = admin_client.get("/operators").get_data(as_text=True)
    assert "Invitation created for new@example.com." in html
    link = re.search(r'<code class="copyable">([^<]+)</code>', html).group(1)
    assert link.startswith("http://backoffice.test/invitations/")
    path = link.removeprefix("http://backoffice.test")
    assert "Invited" in html
    # The link is shown once.
    assert "copyable" not in admin_client.get("/operators").get_data(as_text=True)
    invitee = _operator("new@example.com")
    assert invitee.password_hash is None and invitee.role == "viewer"

    guest = app.test_client()
    assert "Welcome, new@example.com" in guest.get(path).get_data(as_text=True)
    token = csrf_from(guest, path)
    resp = guest.post(path, data={"password": "long-enough-1", "password_confirm": "different-22",
                                  "csrf_token": token})
    assert resp.status_code == 422
    assert "The two passwords differ." in resp.get_data(as_text=True)
    resp = guest.post(path, data={"password": "short", "password_confirm": "short", "csrf_token": token})
    assert resp.status_code == 422
    assert "at least 10 characters" in resp.get_data(as_text=True)
    resp = guest.post(path, data={"password": "long-enough-1", "password_confirm": "long-enough-1",
                                  "csrf_token": token})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    assert guest.get("/").status_code == 200  # signed in
    # The link works once; the new password signs in.
    assert guest.get(path).status_code == 404
    other = app.test_client()
    assert other.get(path).status_code == 404
    sign_in(other, "new@example.com", "long-enough-1")

    entries = [(e.operator_email, e.action, e.target_id, e.before, e.after, e.result) for e in _audit()]
    snapshot = {"email": "new@example.com", "role": "viewer", "active": True}
    assert entries == [
        ("system", "operator.create", "1", None, {"email": "admin@example.com", "role": "admin", "active": True},
         "ok"),
        ("admin@example.com", "operator.create", str(invitee.id), None, snapshot, "ok"),
        ("admin@example.com", "operator.invite", str(invitee.id), None, snapshot, "ok"),
        ("new@example.com", "operator.accept_invite", str(invitee.id), None, None, "ok"),
    ]


def test_unknown_invitation_is_404(client):
    assert client.get("/invitations/not-a-token").status_code == 404


def test_invalid_invite_answers_the_form_with_422(admin_client):
    resp = admin_client.post("/operators/invite", headers={**HX, "X-CSRFToken": admin_client.csrf},
                             data={"email": "not-an-email", "role": "viewer"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="invite-form"')
    assert "Enter a valid e-mail address." in html
    assert 'value="not-an-email"' in html
    resp = admin_client.post("/operators/invite", headers={**HX, "X-CSRFToken": admin_client.csrf},
                             data={"email": "admin@example.com", "role": "viewer"})
    assert resp.status_code == 422
    assert "An operator with this e-mail already exists." in resp.get_data(as_text=True)
    assert [e.action for e in _audit()] == ["operator.create"]  # only the fixture's admin


def test_invite_from_htmx_answers_hx_redirect(admin_client):
    resp = admin_client.post("/operators/invite", headers={**HX, "X-CSRFToken": admin_client.csrf},
                             data={"email": "x@example.com", "role": "admin"})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == "/operators"
    assert _operator("x@example.com").role == "admin"


# --- change role, deactivate ---------------------------------------------------------------------

def test_change_role_writes_before_and_after(admin_client, admin, app):
    viewer = make_operator("viewer@example.com", "viewer")
    viewer_client = app.test_client()
    sign_in(viewer_client, viewer.email)
    resp = admin_client.post(f"/operators/{viewer.id}/role", data={"role": "admin", "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    assert _operator("viewer@example.com").role == "admin"
    assert "viewer@example.com is now admin." in admin_client.get("/operators").get_data(as_text=True)
    entry = _audit()[-1]
    assert (entry.operator_email, entry.action, entry.target_type, entry.target_id, entry.result) == (
        "admin@example.com", "operator.change_role", "operator", str(viewer.id), "ok")
    assert entry.before == {"email": "viewer@example.com", "role": "viewer", "active": True}
    assert entry.after == {"email": "viewer@example.com", "role": "admin", "active": True}
    # New rights take effect at once: the old session is gone.
    assert viewer_client.get("/").status_code == 302


def test_unknown_role_and_unknown_operator(admin_client, admin):
    viewer = make_operator("viewer@example.com", "viewer")
    resp = admin_client.post(f"/operators/{viewer.id}/role", data={"role": "owner", "csrf_token": admin_client.csrf})
    assert resp.status_code == 400
    assert _operator("viewer@example.com").role == "viewer"
    resp = admin_client.post("/operators/9999/role", data={"role": "admin", "csrf_token": admin_client.csrf})
    assert resp.status_code == 404


def test_deactivate_signs_the_operator_out(admin_client, admin, app):
    viewer = make_operator("viewer@example.com", "viewer")
    viewer_client = app.test_client()
    sign_in(viewer_client, viewer.email)
    assert viewer_client.get("/").status_code == 200
    version = viewer.session_version

    resp = admin_client.post(f"/operators/{viewer.id}/active", data={"active": "0", "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    op = _operator("viewer@example.com")
    assert op.active is False
    assert op.session_version == version + 1
    assert viewer_client.get("/").status_code == 302
    assert viewer_client.get("/", headers=HX).headers["HX-Redirect"].startswith("/sign-in")
    token = csrf_from(viewer_client)
    resp = viewer_client.post("/sign-in", data={"email": viewer.email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 401
    entry = _audit()[-1]
    assert (entry.action, entry.before, entry.after) == (
        "operator.deactivate",
        {"email": "viewer@example.com", "role": "viewer", "active": True},
        {"email": "viewer@example.com", "role": "viewer", "active": False},
    )
    assert "Deactivated" in admin_client.get("/operators").get_data(as_text=True)

    resp = admin_client.post(f"/operators/{viewer.id}/active", data={"active": "1", "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    sign_in(viewer_client, viewer.email)
    assert _audit()[-1].action == "operator.activate"


def test_last_admin_cannot_be_demoted_or_deactivated(admin_client, admin):
    resp = admin_client.post(f"/operators/{admin.id}/role", data={"role": "viewer", "csrf_token": admin_client.csrf})
    assert resp.status_code == 400
    assert "The last active admin cannot be demoted." in resp.get_data(as_text=True)
    resp = admin_client.post(f"/operators/{admin.id}/active", data={"active": "0", "csrf_token": admin_client.csrf})
    assert resp.status_code == 400
    assert "The last active admin cannot be deactivated." in resp.get_data(as_text=True)
    op = _operator("admin@example.com")
    assert (op.role, op.active) == ("admin", True)
    assert admin_client.get("/operators").status_code == 200  # still signed in, still admin
    refused = [(e.action, e.before, e.after, e.result) for e in _audit()[1:]]
    snapshot = {"email": "admin@example.com", "role": "admin", "active": True}
    assert refused == [
        ("operator.change_role", snapshot, snapshot, "error"),
        ("operator.deactivate", snapshot, snapshot, "error"),
    ]


def test_an_admin_can_be_demoted_while_another_remains(admin_client, admin):
    second = make_operator("second@example.com", "admin")
    resp = admin_client.post(f"/operators/{second.id}/role", data={"role": "viewer", "csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    assert _operator("second@example.com").role == "viewer"


def test_every_admin_action_writes_an_audit_entry(admin_client, admin):
    """The operator module's admin actions, each with actor, target, before/after and result."""
    _invite(admin_client, "a@example.com")
    invitee = _operator("a@example.com")
    admin_client.post(f"/operators/{invitee.id}/role", data={"role": "admin", "csrf_token": admin_client.csrf})
    admin_client.post(f"/operators/{invitee.id}/active", data={"active": "0", "csrf_token": admin_client.csrf})
    admin_client.post(f"/operators/{invitee.id}/active", data={"active": "1", "csrf_token": admin_client.csrf})
    entries = _audit()[1:]
    assert [(e.operator_email, e.action, e.target_type, e.target_id, e.result) for e in entries] == [
        ("admin@example.com", action, "operator", str(invitee.id), "ok")
        for action in ("operator.create", "operator.invite", "operator.change_role", "operator.deactivate",
                       "operator.activate")
    ]
    assert [(e.before or {}).get("role") for e in entries] == [None, None, "viewer", "admin", "admin"]
    assert [e.after["active"] for e in entries] == [True, True, True, False, True]
    assert all(e.at.tzinfo is not None for e in entries)


# --- the audit page ------------------------------------------------------------------------------

def _entry(action: str, at: datetime, actor: str = "admin@example.com", target: str = "1", result: str = "ok"):
    entry = AuditEntry(operator_email=actor, action=action, target_type="operator", target_id=target,
                       before={"n": 1}, after={"n": 2}, result=result, at=at)
    db.session.add(entry)
    return entry


@pytest.fixture
def entries(admin):
    for day in range(1, 31):
        _entry("account.sync", datetime(2026, 3, day, 12, tzinfo=UTC), target=f"acc_{day}")
    for day in range(1, 21):
        _entry("account.acknowledge", datetime(2026, 4, day, 9, tzinfo=UTC), actor="ops@example.com",
               result="error" if day % 5 == 0 else "ok")
    _entry("invoice.mark_paid", datetime(2026, 5, 2, 8, tzinfo=UTC), actor="denied@example.com", result="denied")
    db.session.commit()
    return 52  # with the fixture admin's own operator.create


def test_audit_page_lists_newest_first_and_paginates(admin_client, entries):
    resp = admin_client.get("/operators/audit")
    assert resp.status_code == 200
    rows = _rows(resp.get_data(as_text=True))
    assert len(rows) == 50
    assert "operator.create" in rows[0]  # written today
    assert "invoice.mark_paid" in rows[1]
    html = resp.get_data(as_text=True)
    assert "1–50 of 52" in html
    assert 'href="/operators/audit?page=2"' in html
    rows = _rows(admin_client.get("/operators/audit?page=2").get_data(as_text=True))
    assert len(rows) == 2
    assert "acc_2<" in rows[0] and "acc_1<" in rows[1]
    past = admin_client.get("/operators/audit?page=3").get_data(as_text=True)
    assert "Page 3 is beyond the end of the list; this is the last page." in past
    assert len(_rows(past)) == 2 and 'href="/operators/audit?page=1" rel="prev"' in past
    rows = _rows(admin_client.get("/operators/audit?page_size=10&page=6").get_data(as_text=True))
    assert len(rows) == 2


@pytest.mark.parametrize(("query", "count"), [
    ("action=account.sync", 30),
    ("action=account.acknowledge&result=error", 4),
    ("result=denied", 1),
    ("operator=ops@", 20),
    ("operator=OPS", 20),
    ("target=acc_7", 1),
    ("from=2026-03-30&to=2026-04-02", 3),
    ("from=2026-04-01", 22),
    ("to=2026-03-02", 2),
    ("action=nothing.like.this", 0),
])
def test_audit_filters(admin_client, entries, query, count):
    resp = admin_client.get(f"/operators/audit?{query}&page_size=100", headers=HX)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="audit-table"')
    assert len(_rows(html)) == count
    if count == 0:
        assert "No entries match these filters." in html


def test_audit_filters_survive_paging(admin_client, entries):
    html = admin_client.get("/operators/audit?action=account.sync&page_size=10").get_data(as_text=True)
    assert len(_rows(html)) == 10
    assert 'href="/operators/audit?action=account.sync&amp;page_size=10&amp;page=2"' in html


@pytest.mark.parametrize(("query", "field"), [
    ("result=maybe", "result"),
    ("from=2026-02-30", "from"),
    ("to=yesterday", "to"),
    ("page=0", "page"),
    ("page=x", "page"),
    ("page_size=101", "page_size"),
    ("operator=" + "x" * 101, "operator"),
    ("page=1000000001", "page"),
])
def test_audit_bad_filter_is_400_naming_the_parameter(admin_client, entries, query, field):
    resp = admin_client.get(f"/operators/audit?{query}", headers={"Accept": "application/json"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == field
    resp = admin_client.get(f"/operators/audit?{query}")
    assert resp.status_code == 400
    assert "<nav" in resp.get_data(as_text=True)  # a whole page with the menu, not a bare error


def test_audit_service_records_system_actor(app):
    services.audit(None, "system.job", "job", 7, before=None, after={"ok": True})
    db.session.commit()
    entry = _audit()[-1]
    assert (entry.operator_id, entry.operator_email, entry.target_id, entry.after) == (None, "system", "7",
                                                                                      {"ok": True})
