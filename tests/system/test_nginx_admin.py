"""nginx's allow-list for the back office (``ADMIN_ALLOWED_NETWORKS``, issue 25 §3): the
configuration rendered by ``deploy/stack.sh render-nginx`` exactly as ``make stack`` renders it,
checked by ``nginx -t``, then real HTTPS requests through nginx from an allowed loopback address
(127.0.0.2) and a refused one (127.0.0.3). The upstream is a small HTTP server that answers
every path: what is tested is what nginx lets through. Needs nginx and openssl only."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "stack.sh"
NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
)

pytestmark = pytest.mark.skipif(
    NGINX is None or shutil.which("openssl") is None, reason="nginx or openssl is not installed"
)


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"app saw {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def render(var: Path, networks: str | None, upstream_port: int, https_port: int):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "STACK_VAR_DIR": str(var),
        "STACK_HTTPS_PORT": str(https_port),
        "STACK_HTTP_PORT": str(free_port()),
        "STACK_APP_PORTS": str(upstream_port),
    }
    if networks is not None:
        env["ADMIN_ALLOWED_NETWORKS"] = networks
    return subprocess.run(
        [str(STACK), "render-nginx"], env=env, capture_output=True, text=True, timeout=60
    )


class Nginx:
    def __init__(self, var: Path, https_port: int) -> None:
        self.var, self.port = var, https_port
        args = [NGINX, "-p", f"{var}/nginx/", "-c", "conf/nginx.conf", "-e", f"{var}/log/e.log"]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        assert "test is successful" in checked.stderr
        self.process = subprocess.Popen([*args, "-g", "daemon off;"], start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.get("/", source="127.0.0.1")
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not answer")

    def get(self, path: str, *, source: str) -> tuple[int, str]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=5, context=context, source_address=(source, 0)
        )
        try:
            connection.request("GET", path, headers={"Host": "127.0.0.1"})
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            self.process.wait(timeout=10)


@pytest.fixture
def nginx_with(tmp_path, upstream):
    started: list[Nginx] = []

    def start(networks: str | None) -> Nginx:
        https_port = free_port()
        var = tmp_path / f"var{len(started)}"
        rendered = render(var, networks, upstream, https_port)
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        server = Nginx(var, https_port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_admin_only_from_the_allowed_networks(nginx_with):
    nginx = nginx_with("127.0.0.2/32, 10.0.0.0/8")
    assert nginx.get("/admin/login/", source="127.0.0.2") == (200, "app saw /admin/login/")
    assert nginx.get("/admin/helpdesk/funnel/", source="127.0.0.2")[0] == 200
    for path in ("/admin/login/", "/admin/", "/admin", "/admin/helpdesk/funnel/", "/%61dmin/"):
        status, _body = nginx.get(path, source="127.0.0.3")
        assert status == 403, path
    # the rest of the site stays open to everybody
    assert nginx.get("/nl/aanmelden/", source="127.0.0.3") == (200, "app saw /nl/aanmelden/")
    assert nginx.get("/administratie/", source="127.0.0.3")[0] == 200


def test_empty_leaves_admin_open_as_before(nginx_with):
    for networks in (None, "", " , "):
        nginx = nginx_with(networks)
        assert nginx.get("/admin/login/", source="127.0.0.3")[0] == 200
        nginx.stop()


def test_a_value_that_is_no_network_stops_the_rendering(tmp_path, upstream):
    rendered = render(tmp_path / "var", "127.0.0.2/32, intranet", upstream, free_port())
    assert rendered.returncode != 0
    assert "ADMIN_ALLOWED_NETWORKS: 'intranet'" in rendered.stderr
