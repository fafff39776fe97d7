"""The README's production set-up, run: the sample nginx configuration in front of gunicorn with
the sample gunicorn settings (deploy/). Stalled uploads that would hold every gunicorn thread
(issue 21: 16 of them froze a 2×4-thread gunicorn for minutes) are nginx's to wait for."""
from __future__ import annotations

import os
import re
import runpy
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.bench.test_ledger_bench import start_gunicorn
from tests.stripe.conftest import free_port, wait_for_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
STALLED = 16


def test_the_gunicorn_settings_are_gunicorns():
    """Every name in deploy/gunicorn.conf.py is a gunicorn setting (a typo would be ignored)."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {s.name for s in KNOWN_SETTINGS}
    settings = {k: v for k, v in runpy.run_path(str(DEPLOY / "gunicorn.conf.py")).items() if not k.startswith("__")}
    assert set(settings) <= names, set(settings) - names
    assert (settings["worker_class"], settings["timeout"] > 30, settings["threads"] > 1) == ("gthread", True, True)


def _stall(port: int) -> socket.socket:
    """A webhook upload that announces 5,000 bytes, sends 10 and then nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /stripe/webhook HTTP/1.1\r\nHost: backoffice.test\r\nContent-Type: application/json\r\n"
              b"Stripe-Signature: t=1,v1=00\r\nContent-Length: 5000\r\n\r\n{\"id\": \"ev")
    return s


def _answer_seconds(port: int, limit: float) -> float | None:
    """Seconds until the sign-in page answers, or None when it did not within `limit`."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(b"GET /sign-in HTTP/1.1\r\nHost: backoffice.test\r\nConnection: close\r\n\r\n")
        try:
            first = s.recv(64)
        except TimeoutError:
            return None
    assert first.startswith(b"HTTP/1.1 200"), first
    return time.monotonic() - started


def _nginx_conf(tmp: Path, listen: int, upstream: int) -> Path:
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    temp = "".join(f"    {name}_temp_path {tmp / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = re.sub(r"http \{\n", lambda m: m.group(0) + f"    access_log off;\n{temp}", text, count=1)
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs Debian's nginx-light)")
def test_behind_the_sample_nginx_stalled_uploads_do_not_starve_gunicorn(db_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "deploy-test", "STRIPE_WEBHOOK_SECRET": "whsec_x",
           "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "instance"), "BACKOFFICE_SCHEDULER": "off"}
    env.pop("CELERY_BROKER_URL", None)
    # One worker with 2 threads (the sample's settings otherwise), so that a few stalls would do.
    gunicorn, app_port, _pid = start_gunicorn(
        "backoffice:create_app()", ["-c", str(DEPLOY / "gunicorn.conf.py"), "--threads", "2"], env,
        tmp_path / "gunicorn.log")
    proxy_port = free_port()
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(_nginx_conf(tmp_path, proxy_port, app_port)), "-e",
         str(tmp_path / "nginx-error.log"), "-g", f"daemon off; pid {tmp_path / 'nginx.pid'};"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    stalls: list[socket.socket] = []
    try:
        wait_for_port(proxy_port, timeout=20)
        assert _answer_seconds(proxy_port, 20) is not None  # the worker has started the app

        stalls = [_stall(proxy_port) for _ in range(STALLED)]
        time.sleep(0.5)
        through_nginx = _answer_seconds(proxy_port, 5)
        assert through_nginx is not None and through_nginx < 2, through_nginx

        # Without nginx, two of those stalls hold both threads: the page does not answer.
        direct = [_stall(app_port) for _ in range(2)]
        stalls += direct
        time.sleep(0.5)
        assert _answer_seconds(app_port, 3) is None
    finally:
        for s in stalls:
            s.close()
        nginx.terminate()
        gunicorn.terminate()
        nginx.wait(10)
        gunicorn.wait(10)
