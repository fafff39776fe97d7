def test_sign_in_and_dashboard(admin_client):
    resp = admin_client.get("/")
    assert resp.status_code == 200
    assert "Dashboard" in resp.get_data(as_text=True)
