import re

from django.test import override_settings

from keys import tokens


def test_activation_code_has_ten_crockford_characters():
    codes = {tokens.generate_activation_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{10}", code)
        assert tokens.format_activation_code(code) == f"{code[:5]}-{code[5:]}"


def test_typed_code_ignores_case_spaces_dashes_and_reads_o_i_l_as_digits():
    stored = tokens.hash_activation_code("0A1B1C2D3E")
    for typed in ["0A1B1-C2D3E", "oa1b1 c2d3e", " OAIBL-C2D3E ", "0a-ib-lc-2d-3e"]:
        assert tokens.check_activation_code(typed, stored), typed
    assert not tokens.check_activation_code("0A1B1-C2D3F", stored)


def test_link_token_is_long_and_stored_as_a_keyed_hash():
    token = tokens.generate_link_token()
    assert len(token) >= 22  # >= 128 bits in base64
    hashed = tokens.hash_link_token(token)
    assert token not in hashed
    assert hashed in tokens.link_token_candidates(token)


def test_hashes_depend_on_the_server_key():
    with override_settings(ACTIVATION_HASH_KEYS=["key-one"]):
        one = tokens.hash_activation_code("ABCDEFGHJK")
    with override_settings(ACTIVATION_HASH_KEYS=["key-two"]):
        two = tokens.hash_activation_code("ABCDEFGHJK")
    assert one != two


def test_rotated_key_still_checks_old_hashes():
    with override_settings(ACTIVATION_HASH_KEYS=["old-key"]):
        stored = tokens.hash_activation_code("ABCDEFGHJK")
        token = tokens.generate_link_token()
        stored_token = tokens.hash_link_token(token)
    with override_settings(ACTIVATION_HASH_KEYS=["new-key", "old-key"]):
        assert tokens.check_activation_code("ABCDE-FGHJK", stored)
        assert stored_token in tokens.link_token_candidates(token)
    with override_settings(ACTIVATION_HASH_KEYS=["new-key"]):
        assert not tokens.check_activation_code("ABCDE-FGHJK", stored)


def test_a_link_issued_under_an_older_key_still_opens(citizen, clerk):
    """``find_by_token`` looks the link up under the current key, then each older one."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from keys.services import activation, issuance

    with override_settings(ACTIVATION_HASH_KEYS=["old-key"]):
        old = issuance.issue_activation(citizen, issued_by=clerk)
    token = old.activation_link.rstrip("/").rsplit("/", 1)[-1]
    with override_settings(ACTIVATION_HASH_KEYS=["new-key", "old-key"]):
        with CaptureQueriesContext(connection) as queries:
            assert activation.find_by_token(token) == old.activation
        assert len(queries) == 2  # the current key's hash, then the old one's
        response = Client().get(old.activation_link.split("testserver", 1)[-1])
        assert response.status_code == 302 and response["Location"].endswith("/code/")
        current = issuance.issue_activation(citizen, issued_by=clerk)  # replaces the old one
        new_token = current.activation_link.rstrip("/").rsplit("/", 1)[-1]
        with CaptureQueriesContext(connection) as queries:
            assert activation.find_by_token(new_token) == current.activation
        assert len(queries) == 1
    with override_settings(ACTIVATION_HASH_KEYS=["new-key"]):
        assert activation.find_by_token(token) is None
        assert activation.find_by_token("") is None and activation.find_by_token("x" * 201) is None
