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
