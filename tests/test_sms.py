"""The SMS backends, including the HTTP gateway against a real local HTTP server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keys import sms


class Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 202
    delay = 0.0
    location = ""

    def do_POST(self):
        time.sleep(type(self).delay)
        length = int(self.headers["Content-Length"])
        type(self).received.append(
            {"auth": self.headers["Authorization"], "payload": json.loads(self.rfile.read(length))}
        )
        self.send_response(type(self).status)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    Gateway.received, Gateway.status, Gateway.delay, Gateway.location = [], 202, 0.0, ""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "http"
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.SMS_GATEWAY_TOKEN = "gateway-token"
    settings.SMS_GATEWAY_TIMEOUT = 0.5
    yield Gateway
    server.shutdown()
    server.server_close()


def test_http_gateway_posts_json_with_the_token(gateway):
    sms.send_sms("+32470123456", "code 123456")
    assert gateway.received == [
        {
            "auth": "Bearer gateway-token",
            "payload": {"to": "+32470123456", "body": "code 123456", "sender": "CSAM"},
        }
    ]


def test_http_gateway_error_status_raises(gateway):
    gateway.status = 503
    with pytest.raises(sms.SmsDeliveryError):
        sms.send_sms("+32470123456", "code")


def test_http_gateway_timeout_raises(gateway):
    gateway.delay = 2.0
    started = time.monotonic()
    with pytest.raises(sms.SmsDeliveryError):
        sms.send_sms("+32470123456", "code")
    assert time.monotonic() - started < 1.9


class RedirectTarget(BaseHTTPRequestHandler):
    """Where a gateway's redirect points: it records whatever reaches it, and says yes."""

    received: list = []

    def _record(self):
        type(self).received.append(
            {"method": self.command, "auth": self.headers.get("Authorization")}
        )
        self.send_response(200)
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_target():
    RedirectTarget.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RedirectTarget)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/elsewhere", RedirectTarget
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_http_gateway_redirect_is_a_failed_delivery_and_the_token_stays_home(
    gateway, redirect_target, status
):
    """A gateway answering 3xx is not followed: the bearer token is never sent to the
    redirect's target, and the message is not counted as delivered."""
    target_url, target = redirect_target
    gateway.status, gateway.location = status, target_url
    with pytest.raises(sms.SmsDeliveryError, match=str(status)):
        sms.send_sms("+32470123456", "code 123456")
    assert len(gateway.received) == 1
    assert target.received == []


def test_http_gateway_redirect_is_retried_by_the_outbox(gateway, redirect_target, db, settings):
    from keys import delivery
    from keys.models import OutboundMessage

    target_url, target = redirect_target
    gateway.status, gateway.location = 302, target_url
    outbound = delivery.queue_sms("+32470123456", "code 123456", purpose="test")
    outbound.refresh_from_db()
    assert outbound.status == OutboundMessage.Status.RETRYING
    assert outbound.last_error == "SmsDeliveryError"
    assert outbound.sent_at is None
    assert target.received == []


def test_http_gateway_needs_a_url(settings):
    settings.SMS_BACKEND = "http"
    settings.SMS_GATEWAY_URL = "file:///etc/passwd"
    with pytest.raises(sms.SmsDeliveryError):
        sms.send_sms("+32470123456", "code")


def test_filebased_writes_one_json_file_per_message(settings, tmp_path):
    settings.SMS_BACKEND = "filebased"
    settings.SMS_FILE_PATH = str(tmp_path)
    sms.send_sms("+32470123456", "first")
    sms.send_sms("+32470123457", "second")
    files = sorted(tmp_path.glob("*.json"))
    assert [json.loads(f.read_text())["body"] for f in files] == ["first", "second"]
    assert json.loads(files[0].read_text())["to"] == "+32470123456"


def test_console_prints(settings, capsys):
    settings.SMS_BACKEND = "console"
    sms.send_sms("+32470123456", "hello")
    assert "hello" in capsys.readouterr().out


def test_dotted_path(settings):
    settings.SMS_BACKEND = "keys.sms.LocmemSmsBackend"
    sms.send_sms("+32470123456", "via dotted path")
    assert sms.outbox[-1].body == "via dotted path"
