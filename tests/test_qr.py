"""The QR code of the mobile app key: the otpauth:// URI it carries and the SVG that draws it.

The SVG is drawn back to pixels here from its own path data and decoded with zxing-cpp, so the
markup itself (not segno's PNG writer) is shown to hold the URI; the browser tests in
``tests/browser/test_qr_scan.py`` then read it off real screenshots.
"""

import re
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import segno
import zxingcpp
from django.utils.safestring import SafeString
from PIL import Image

from keys import crypto
from keys.digital_keys import get_kind
from keys.models import User
from keys.qr import QUIET_ZONE_MODULES, otpauth_uri, qr_svg
from keys.services import activation as flow

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PATH_COMMAND = re.compile(r"([MmHhVv])\s*(-?\d+(?:\.\d+)?)(?:[\s,]+(-?\d+(?:\.\d+)?))?")


def rasterize(svg: str, pixels_per_module: int = 6) -> tuple[Image.Image, list[list[bool]]]:
    """Draw segno's path (horizontal strokes 1 unit thick, M/m/h only) to a module grid."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    grid = [[False] * size for _ in range(size)]
    dark = re.search(r'<path[^>]*stroke="#000"[^>]*\sd="([^"]+)"', svg).group(1)
    x = y = 0.0
    for command, first, second in PATH_COMMAND.findall(dark):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        elif command == "h":
            row = int(y - 0.5)
            for column in range(int(x), int(x + float(first))):
                grid[row][column] = True
            x += float(first)
        else:
            raise AssertionError(f"unexpected path command {command}")
    image = Image.new("L", (size, size), 255)
    image.putdata([0 if cell else 255 for row in grid for cell in row])
    return image.resize((size * pixels_per_module,) * 2, Image.Resampling.NEAREST), grid


def decode(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1, results
    return results[0].text


@pytest.mark.parametrize(
    ("issuer", "account"),
    [
        ("CSAM", "jan.peeters"),
        ("Fédéral", "Müller"),
        ("Fédéral", "Mu\u0308ller"),  # decomposed ü: written as NFC
        ("BOSA/DTO: Mijn sleutels & co", "an.de-smet@example.be"),
        ("Ελλάδα 100%", "δοκιμή_χρήστης"),
        ("50+ 連邦", "user+tag"),
    ],
)
def test_uri_is_ascii_and_round_trips(issuer, account):
    uri = otpauth_uri(SECRET, account=account, issuer=issuer)
    assert uri.isascii()
    assert uri.startswith("otpauth://totp/")
    assert " " not in uri
    assert "+" not in uri  # '+' would turn into a space in some decoders
    parts = urlsplit(uri)
    label = parts.path.removeprefix("/")
    assert label.count(":") == 1  # the only literal colon is the separator
    expected_account = account.replace("u\u0308", "ü")
    assert [unquote(part) for part in label.split(":")] == [issuer, expected_account]
    assert parse_qs(parts.query) == {"secret": [SECRET], "issuer": [issuer]}
    parsed = pyotp.parse_uri(uri)
    assert (parsed.secret, parsed.issuer, parsed.name) == (SECRET, issuer, expected_account)
    assert (parsed.digits, parsed.interval) == (6, 30)


def test_accented_uri_is_percent_encoded_utf8():
    uri = otpauth_uri(SECRET, account="Müller", issuer="Fédéral")
    assert uri == (
        f"otpauth://totp/F%C3%A9d%C3%A9ral:M%C3%BCller?secret={SECRET}&issuer=F%C3%A9d%C3%A9ral"
    )


def test_non_default_digits_and_period_are_written():
    uri = otpauth_uri(SECRET, account="jan.peeters", issuer="CSAM", digits=8, period=60)
    parsed = pyotp.parse_uri(uri)
    assert (parsed.digits, parsed.interval) == (8, 60)
    assert parsed.now() == pyotp.TOTP(SECRET, digits=8, interval=60).now()


def test_svg_scales_and_carries_nothing_the_csp_blocks():
    uri = otpauth_uri(SECRET, account="jan.peeters", issuer="CSAM")
    svg = qr_svg(uri)
    assert isinstance(svg, SafeString)
    opening = re.match(r"<svg [^>]*>", svg).group(0)
    size = segno.make(uri, error="m").symbol_size(scale=1, border=0)[0]
    assert f'viewBox="0 0 {size + 8} {size + 8}"' in opening
    assert 'shape-rendering="crispEdges"' in opening
    assert 'class="qr-code"' in opening
    assert not re.search(r"\s(width|height)=", opening)  # CSS decides the size
    assert not re.search(r"\sstyle=", svg)
    assert "<script" not in svg
    assert "<style" not in svg


@pytest.mark.parametrize(("issuer", "account"), [("CSAM", "jan.peeters"), ("Fédéral", "Müller")])
def test_svg_decodes_back_to_the_uri_with_a_quiet_zone(issuer, account):
    uri = otpauth_uri(SECRET, account=account, issuer=issuer)
    image, grid = rasterize(qr_svg(uri))
    assert decode(image) == uri
    margin = QUIET_ZONE_MODULES
    assert margin == 4
    for index in range(margin):
        assert not any(grid[index]) and not any(grid[-1 - index])
        assert not any(row[index] for row in grid) and not any(row[-1 - index] for row in grid)
    # the finder pattern starts right after the quiet zone
    assert all(grid[margin][margin : margin + 7])


@pytest.mark.parametrize("length", [1, 40, 79, 150, 600])
def test_svg_markup_is_segnos_byte_for_byte(length):
    """``keys.qr.svg_markup`` writes what segno's ``svg_inline`` writes for the options
    ``qr_svg`` used to pass it, for symbols of many versions; ``qr_svg`` is that markup."""
    import secrets

    from keys.qr import svg_markup

    payloads = [secrets.token_urlsafe(length)[:length] for _ in range(8)]
    payloads.append(otpauth_uri(pyotp.random_base32(32), account="jan", issuer="CSAM")[:length])
    for payload in payloads:
        code = segno.make(payload, error="m")
        for css_class in ("qr-code", 'a "quoted" <class>'):
            theirs = code.svg_inline(
                scale=1,
                border=4,
                dark="#000",
                light="#fff",
                omitsize=True,
                svgclass=css_class,
                lineclass=None,
            )
            assert svg_markup(code.matrix, css_class) == theirs, payload
        assert str(qr_svg(payload)) == svg_markup(code.matrix, "qr-code").replace(
            "<svg ", '<svg shape-rendering="crispEdges" aria-hidden="true" ', 1
        )


@pytest.fixture
def muller(citizen):
    user = User.objects.create_user("Müller", "Correct-Horse-9x")
    citizen.account = user
    citizen.save()
    return user


@pytest.mark.django_db
def test_setup_context_with_accented_issuer_and_username(muller, settings):
    settings.CSAM = {"TOTP_ISSUER": "Fédéral"}
    key = flow.enrol_key(muller, "totp", None)
    context = get_kind("totp").setup_context(key)
    secret = crypto.decrypt(key.secret_encrypted)
    image, _grid = rasterize(context["qr_svg"])
    decoded = decode(image)
    assert decoded == context["otpauth_uri"]
    parsed = pyotp.parse_uri(decoded)
    assert (parsed.secret, parsed.issuer, parsed.name) == (secret, "Fédéral", "Müller")
    assert context["secret_grouped"].replace(" ", "") == secret


class TestFastMaskSelection:
    """``keys.qr`` scores the 8 data masks with whole-row operations instead of segno's
    module-by-module loops (about half the QR code's CPU): the choice must stay segno's, which
    is ISO/IEC 18004's (lowest penalty), for every payload."""

    def test_segno_uses_it(self):
        import segno.encoder

        from keys import qr

        assert segno.encoder.find_and_apply_best_mask is qr._find_and_apply_best_mask

    @pytest.mark.parametrize("length", [1, 17, 40, 78, 122, 150, 250, 600])
    def test_same_mask_and_matrix_as_segno(self, length, monkeypatch):
        import secrets

        import segno.encoder

        payloads = [secrets.token_urlsafe(length)[:length] for _ in range(12)]
        payloads.append(
            otpauth_uri(pyotp.random_base32(32), account="jan", issuer="Fédéral")[:length]
        )
        for payload in payloads:
            ours = segno.make(payload, error="m", micro=False)
            monkeypatch.setattr(
                segno.encoder,
                "find_and_apply_best_mask",
                segno.encoder._segno_find_and_apply_best_mask,
            )
            theirs = segno.make(payload, error="m", micro=False)
            monkeypatch.undo()
            assert (ours.version, ours.mask, ours.matrix) == (
                theirs.version,
                theirs.mask,
                theirs.matrix,
            ), payload

    @staticmethod
    def packed(matrix, size):
        from keys.qr import _pack, packed_scores

        lines = [bytes(row) for row in matrix]
        columns = [bytes(column) for column in zip(*lines, strict=True)]
        return packed_scores(_pack(lines, size), _pack(columns, size), size)

    def test_packed_scores_equal_segnos_on_any_matrix(self):
        """Random matrices of every density, and matrices made of finder-like patterns
        (dark-light-dark-dark-dark-light-dark) that overlap at 4 and 6 modules, touch the edges
        and sit next to light runs of 0 to 5: where segno's count of N3 has its quirks (an
        occurrence at an edge counts, a counted one hides those overlapping it)."""
        import random

        import segno.encoder

        rng = random.Random(1805)
        pieces = [b"\x01\x00\x01\x01\x01\x00\x01", b"\x01\x00\x01", b"\x01\x01\x01\x00\x01"]
        for number in range(600):
            size = rng.choice([21, 25, 29, 37, 45, 57, 101, 177])
            if number % 2:
                dark = rng.random()
                matrix = tuple(
                    bytearray(1 if rng.random() < dark else 0 for _ in range(size))
                    for _ in range(size)
                )
            else:
                rows = []
                for _ in range(size):
                    row = bytearray()
                    while len(row) < size:
                        row += rng.choice(pieces) + b"\x00" * rng.randint(0, 5)
                    rows.append(row[:size])
                matrix = tuple(rows)
            expected = segno.encoder.mask_scores(matrix, size, size)
            assert self.packed(matrix, size) == expected, (size, number)
        # The quirks themselves, on a line of the symbol: at the edges, overlapping, hidden.
        for line in (
            b"\x01\x00\x01\x01\x01\x00\x01\x01\x01\x00\x01",  # at 0 and 4 (hidden)
            b"\x00" * 4 + b"\x01\x00\x01\x01\x01\x00\x01" * 2,
            b"\x01\x01\x00\x01\x01\x01\x00\x01\x00\x01\x01\x01\x00\x01\x00\x00",
        ):
            size = 21
            row = bytearray((line + b"\x01\x00" * 21)[:size])
            matrix = tuple(bytearray(row) if i % 3 == 0 else bytearray(size) for i in range(size))
            assert self.packed(matrix, size) == segno.encoder.mask_scores(matrix, size, size)

    def test_a_given_mask_and_micro_codes_go_to_segno(self):
        assert segno.make("otpauth://x", error="m", mask=3, micro=False).mask == 3
        assert segno.make("12345", micro=True).is_micro
