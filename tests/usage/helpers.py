"""Calling the ingest API as the platform does: a bearer token with the `ingest` scope."""
from __future__ import annotations

from datetime import UTC, datetime

from backoffice.api import services as api_services

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


class Api:
    def __init__(self, client, secret: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"}

    def put(self, path, body=None):
        return self.client.put("/api/v1" + path, json=body, headers=self.headers)

    def post(self, path, body=None):
        return self.client.post("/api/v1" + path, json=body, headers=self.headers)

    def delete(self, path, body=None):
        return self.client.delete("/api/v1" + path, json=body, headers=self.headers)

    def account(self, account_id: str = "acc_1", name: str = "Acme AG", **extra):
        resp = self.put(f"/accounts/{account_id}", {"name": name, "country": "CH", **extra})
        assert resp.status_code in (200, 201), resp.get_json()
        return resp

    def deployment(self, name: str, account_id: str = "acc_1", plan=None, add_ons=(), suspended=False, at=None):
        body = {"account_id": account_id, "plan": plan, "add_ons": list(add_ons), "suspended": suspended}
        if at is not None:
            body["occurred_at"] = iso(at)
        return self.put(f"/deployments/{name}", body)


def make_api(client) -> Api:
    """A client for the ingest API with a fresh `ingest` token (call inside the app context)."""
    _token, secret = api_services.create_token("platform", "ingest")
    return Api(client, secret)
