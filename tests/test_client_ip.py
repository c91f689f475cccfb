"""The client's address: X-Forwarded-For only from TRUSTED_PROXIES, read right to left."""

from datetime import timedelta

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from keys import audit, network
from keys.conf import DEFAULTS
from keys.models import AuditEvent, SignInAttempt

PROXY = "10.0.0.5"
CLIENT = "198.51.100.23"


def ip(remote_addr: str | None = "192.0.2.1", forwarded: str | None = None, **extra) -> str | None:
    meta = dict(extra)
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    if remote_addr is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote_addr
    return network.client_ip(request)


def trusting(*proxies: str):
    return override_settings(TRUSTED_PROXIES=list(proxies))


def test_direct_the_peer_is_the_client():
    assert ip("192.0.2.1") == "192.0.2.1"
    assert ip("2001:db8::7") == "2001:db8::7"
    assert ip("") is None
    assert ip(None) is None
    assert network.client_ip(None) is None


def test_by_default_no_proxy_is_trusted_and_the_header_changes_nothing():
    assert ip("192.0.2.1", "203.0.113.9") == "192.0.2.1"
    assert ip("127.0.0.1", "203.0.113.9") == "127.0.0.1"


def test_spoofed_header_from_an_untrusted_peer_is_ignored():
    with trusting(PROXY):
        assert ip("192.0.2.1", "203.0.113.9") == "192.0.2.1"
        assert ip("192.0.2.1", f"203.0.113.9, {PROXY}") == "192.0.2.1"
        # ... even when the header names a trusted proxy's address as the client
        assert ip("192.0.2.1", PROXY) == "192.0.2.1"


def test_through_one_trusted_proxy():
    with trusting(PROXY):
        assert ip(PROXY, CLIENT) == CLIENT
        # the client wrote its own entries; the proxy appended the real peer: that one counts
        assert ip(PROXY, f"1.1.1.1, 127.0.0.1, {CLIENT}") == CLIENT
        # several header lines, joined by the WSGI server
        assert ip(PROXY, f"6.6.6.6,{CLIENT}") == CLIENT
        # no header from a trusted proxy: the proxy itself
        assert ip(PROXY) == PROXY


def test_through_two_trusted_proxies():
    edge, inner = "192.0.2.10", PROXY
    with trusting(edge, inner):
        # client -> edge (appends CLIENT) -> inner (appends edge) -> us (peer inner)
        assert ip(inner, f"{CLIENT}, {edge}") == CLIENT
        assert ip(inner, f"203.0.113.66, {CLIENT}, {edge}") == CLIENT
    with trusting(inner):
        # the edge is not trusted: it is the client as far as we know
        assert ip(inner, f"{CLIENT}, {edge}") == edge


def test_every_hop_trusted_gives_the_leftmost():
    with trusting("10.0.0.0/8"):
        assert ip(PROXY, "10.1.2.3, 10.0.0.9") == "10.1.2.3"


def test_cidr_networks():
    with trusting("10.0.0.0/8", "172.16.0.0/12"):
        assert ip("10.200.3.4", CLIENT) == CLIENT
        assert ip("172.31.255.254", CLIENT) == CLIENT
        assert ip("172.32.0.1", CLIENT) == "172.32.0.1"
        assert ip("10.200.3.4", f"{CLIENT}, 172.20.0.1") == CLIENT


def test_ipv6():
    with trusting("2001:db8:feed::/48"):
        assert ip("2001:db8:feed::1", "2001:db8:beef::42") == "2001:db8:beef::42"
        assert ip("2001:db8:feed::1", "[2001:db8:beef::42]:51234") == "2001:db8:beef::42"
        assert ip("2001:db8:feed::1", f"{CLIENT}") == CLIENT
        assert ip("2001:db8:beef::1", CLIENT) == "2001:db8:beef::1"  # not in the network
    with trusting("127.0.0.1"):
        # an IPv4-mapped peer (dual-stack socket) is the IPv4 proxy
        assert ip("::ffff:127.0.0.1", CLIENT) == CLIENT
        assert ip(PROXY, "::ffff:198.51.100.23") == PROXY


def test_ports_are_dropped():
    with trusting(PROXY):
        assert ip(PROXY, f"{CLIENT}:4711") == CLIENT


@pytest.mark.parametrize(
    "garbage",
    ["unknown", "", "evil.example", "1.2.3", "1.2.3.4:port", "fe80::1%eth0", "[::1", "x" * 300],
)
def test_malformed_entries_fall_back_to_the_last_trusted_hop(garbage):
    with trusting("10.0.0.0/8"):
        assert ip(PROXY, garbage) == PROXY
        assert ip(PROXY, f"{CLIENT}, {garbage}") == PROXY  # nobody vouches for CLIENT
        assert ip(PROXY, f"{garbage}, {CLIENT}") == CLIENT
        assert ip(PROXY, f"{CLIENT}, {garbage}, 10.0.0.7") == "10.0.0.7"


def test_a_malformed_peer_is_no_address_and_never_read_from_the_header():
    with trusting("10.0.0.0/8"):
        assert ip("not-an-address", CLIENT) is None


def test_unix_socket_peer_only_when_trusted():
    assert ip("", CLIENT) is None
    with trusting("unix"):
        assert ip("", CLIENT) == CLIENT
        assert ip("192.0.2.1", CLIENT) == "192.0.2.1"


def test_audit_client_ip_is_the_same_function():
    assert audit.client_ip is network.client_ip


def test_settings_refuse_what_is_not_a_network(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from csam_activation.settings import env_networks

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32,unix,127.0.0.1")
    assert env_networks("TRUSTED_PROXIES") == ["10.0.0.0/8", "2001:db8::/32", "unix", "127.0.0.1"]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")
    with pytest.raises(ImproperlyConfigured, match=r"proxy\.internal"):
        env_networks("TRUSTED_PROXIES")


# --- end to end: the rate limiter, the audit trail and sign-in see the derived address -------


def limits(**overrides):
    return override_settings(CSAM={"RATE_LIMITS": {**DEFAULTS["RATE_LIMITS"], **overrides}})


def through_proxy(client, path, client_address, **extra):
    return client.get(path, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{client_address}", **extra)


def test_link_rate_limit_counts_each_client_behind_a_trusted_proxy(client, db, time_machine):
    time_machine.move_to(timezone.now().replace(second=0, microsecond=0), tick=False)
    with trusting(PROXY), limits(**{"link:ip": (3, timedelta(minutes=10))}):
        for _ in range(3):
            assert through_proxy(client, "/nl/activeren/guess/", CLIENT).status_code == 404
        assert through_proxy(client, "/nl/activeren/guess/", CLIENT).status_code == 429
        # another citizen behind the same proxy is not refused
        assert through_proxy(client, "/nl/activeren/guess/", "198.51.100.24").status_code == 404
        # the refusal is audited with the client's address, not the proxy's
        event = AuditEvent.objects.get(action=AuditEvent.Action.RATE_LIMITED)
        assert event.ip_address == CLIENT
        assert event.detail == {"scope": "link:ip"}


def test_a_client_cannot_escape_the_limit_by_writing_the_header(client, db, time_machine):
    time_machine.move_to(timezone.now().replace(second=0, microsecond=0), tick=False)
    with limits(**{"link:ip": (3, timedelta(minutes=10))}):  # no trusted proxy: straight to us
        statuses = [
            client.get(
                "/nl/activeren/guess/", REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}"
            ).status_code
            for i in range(5)
        ]
        assert statuses == [404, 404, 404, 429, 429]
        assert set(AuditEvent.objects.values_list("ip_address", flat=True)) == {"192.0.2.50"}


def test_sign_in_attempts_and_audit_carry_the_client_address(client, db):
    with trusting(PROXY):
        client.post(
            "/nl/aanmelden/",
            {"username": "nobody.here", "password": "Wrong-password-1"},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"203.0.113.77, {CLIENT}",
        )
    assert list(SignInAttempt.objects.values_list("ip_address", flat=True)) == [CLIENT]
    assert set(AuditEvent.objects.values_list("ip_address", flat=True)) == {CLIENT}
