"""The QR code of the mobile app key, as a phone camera has to read it off a screen.

Two things go wrong in the wild and are handled here:

- the drawing: the SVG carries a ``viewBox`` and no fixed size, so the style sheet scales it
  (``.qr svg`` in ``static/keys/site.css``) instead of cropping it; modules are drawn with
  ``shape-rendering="crispEdges"`` (a presentation attribute, which the CSP allows, unlike a
  ``style`` attribute) and surrounded by the quiet zone of 4 modules that ISO/IEC 18004 asks for;
- the text: issuer and account name are percent-encoded as UTF-8 in the label and in the
  ``issuer`` parameter (Key URI Format), so "Fédéral:Müller" survives the QR code's byte mode
  and parses back to the same names.
"""

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import segno
import segno.encoder
from django.utils.safestring import SafeString, mark_safe

QUIET_ZONE_MODULES = 4


@lru_cache(maxsize=64)
def _mask_rows(width: int, height: int) -> tuple[tuple[int, ...], ...]:
    """For each of the 8 data masks of a QR code this size: each row's XOR pattern as one
    integer (one byte a module), zero outside the encoding region, exactly as segno's
    ``apply_mask`` flips modules (the same function-pattern matrix, the same mask functions).
    It depends on the size only, so it is computed once per version."""
    enc = segno.encoder
    function_matrix = enc.make_matrix(width, height)
    enc.add_finder_patterns(function_matrix, width, height)
    enc.add_alignment_patterns(function_matrix, width, height)
    function_matrix[-8][8] = 0x1
    masks = []
    for pattern in enc.get_data_mask_functions(False):
        masks.append(
            tuple(
                int.from_bytes(
                    bytes(
                        1 if function_matrix[i][j] > 0x1 and pattern(i, j) else 0
                        for j in range(width)
                    ),
                    "big",
                )
                for i in range(height)
            )
        )
    return tuple(masks)


_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


#: Light modules written around every line when the lines are packed into one integer
#: (``_pack``): runs stop there, and N3's "4 light modules" before or after a finder-like
#: pattern need no clipping at the symbol's edge (segno's clipped test and its edge rule say the
#: same thing there: tested).
_PAD = 4


def _pack(lines: Sequence[bytes], size: int) -> int:
    """``lines`` (0/1 bytes, ``size`` long) as one integer: module ``j`` of line ``k`` at bit
    ``_PAD + k * (size + _PAD) + j``, light padding between lines."""
    stride = size + _PAD
    packed = 0
    for number, line in enumerate(lines):
        packed |= int(bytes(line)[::-1].translate(_TO_DIGITS), 2) << (_PAD + number * stride)
    return packed


@lru_cache(maxsize=64)
def _layout(size: int) -> tuple[int, int, int, int]:
    """(stride, the bits of modules, of horizontal pairs, of 2x2 blocks' top-left modules)."""
    stride = size + _PAD
    modules = 0
    for number in range(size):
        modules |= ((1 << size) - 1) << (_PAD + number * stride)
    pairs = modules & (modules >> 1)
    return stride, modules, pairs, pairs & (pairs >> stride)


@lru_cache(maxsize=64)
def _mask_bits(size: int) -> tuple[tuple[int, int], ...]:
    """Each data mask's flips packed as ``_pack`` packs a symbol: (by rows, by columns)."""
    packed = []
    for mask in _mask_rows(size, size):
        rows = [flip.to_bytes(size, "big") for flip in mask]
        columns = [bytes(column) for column in zip(*rows, strict=True)]
        packed.append((_pack(rows, size), _pack(columns, size)))
    return tuple(packed)


def _runs(lines: int, modules: int) -> int:
    """N1 of packed lines: each run of 5 + i modules of one colour scores 3 + i."""
    score = 0
    for same in (lines, ~lines & modules):
        fives = same & (same >> 1) & (same >> 2) & (same >> 3) & (same >> 4)  # run start..+4
        score += fives.bit_count() + 2 * (fives & ~(fives << 1)).bit_count()
    return score


def _finder_like(lines: int) -> int:
    """N3 of packed lines, counted as segno counts it: left to right in each line, 40 for an
    occurrence of dark-light-dark-dark-dark-light-dark with 4 light modules before or after it;
    a counted occurrence hides the ones that overlap it (segno searches on 7 modules further)."""
    found = (
        lines & (lines >> 2) & (lines >> 3) & (lines >> 4) & (lines >> 6)
        & ~((lines >> 1) | (lines >> 5))
    )  # fmt: skip
    if not found:
        return 0
    light_before = ~((lines << 1) | (lines << 2) | (lines << 3) | (lines << 4))
    light_after = ~((lines >> 7) | (lines >> 8) | (lines >> 9) | (lines >> 10))
    counted = found & (light_before | light_after)
    score, hidden_below = 0, -1
    while found:
        lowest = found & -found
        found ^= lowest
        position = lowest.bit_length() - 1
        if position >= hidden_below and counted & lowest:
            score += 40
            hidden_below = position + 7
    return score


def packed_scores(rows: int, columns: int, size: int) -> tuple[int, int, int, int]:
    """segno's ``mask_scores`` (N1, N2, N3, N4) of a symbol packed by rows and by columns
    (``_pack``): each feature a few operations on two integers instead of a pass over every
    module. Equal to segno's on every matrix (``tests/test_qr.py``)."""
    stride, modules, pairs, blocks = _layout(size)
    n1 = _runs(rows, modules) + _runs(columns, modules)
    same = ~(rows ^ (rows >> 1)) & pairs
    n2 = 3 * (same & (same >> stride) & ~(rows ^ (rows >> stride)) & blocks).bit_count()
    n3 = _finder_like(rows) + _finder_like(columns)
    percent = float(rows.bit_count()) / (size**2)
    n4 = 10 * int(abs(percent * 100 - 50) / 5)
    return n1, n2, n3, n4


def _find_and_apply_best_mask(matrix, width, height, proposed_mask=None):
    """segno's ``find_and_apply_best_mask`` (ISO/IEC 18004 §7.8: the mask with the lowest
    penalty wins, the first of equals), with the symbol packed into two integers once and each
    mask's flips packed once per size, so that a mask is applied and scored by
    ``packed_scores`` in a few big-integer operations; only the winner is written into the
    matrix. The same choice as segno's (``tests/test_qr.py`` compares both over many payloads)
    in a fraction of the time (on the benchmark machine: a version-7 code took 9-13 ms of CPU
    with segno's loops; the app key's version-5 code 1.4 ms with the earlier row-by-row scoring,
    0.22 ms here)."""
    if proposed_mask is not None or not (width == height and width >= 21):
        return _segno_find_and_apply_best_mask(matrix, width, height, proposed_mask)
    size = width
    lines = [bytes(row) for row in matrix]
    rows = _pack(lines, size)
    columns = _pack([bytes(column) for column in zip(*lines, strict=True)], size)
    best_score, best_pattern = None, 0
    for number, (flip_rows, flip_columns) in enumerate(_mask_bits(size)):
        score = sum(packed_scores(rows ^ flip_rows, columns ^ flip_columns, size))
        if best_score is None or score < best_score:
            best_score, best_pattern = score, number
    flips = _mask_rows(size, size)[best_pattern]
    masked = tuple(
        bytearray((int.from_bytes(row, "big") ^ flip).to_bytes(size, "big"))
        for row, flip in zip(lines, flips, strict=True)
    )
    return best_pattern, masked


# segno's own function, kept (once, whatever reloads this module) for the cases above and for
# the tests; the encoder looks the name up at each call, so this swap is all it takes.
if not hasattr(segno.encoder, "_segno_find_and_apply_best_mask"):
    segno.encoder._segno_find_and_apply_best_mask = segno.encoder.find_and_apply_best_mask
_segno_find_and_apply_best_mask = segno.encoder._segno_find_and_apply_best_mask
segno.encoder.find_and_apply_best_mask = _find_and_apply_best_mask


def _encode(value: str) -> str:
    """Percent-encode every character but the RFC 3986 unreserved ones (``/`` and ``:`` too)."""
    return quote(unicodedata.normalize("NFC", value), safe="")


def otpauth_uri(
    secret: str,
    *,
    account: str,
    issuer: str,
    digits: int = 6,
    period: int = 30,
) -> str:
    """The ``otpauth://totp/`` URI of a TOTP key, per Google's Key URI Format.

    The label is ``issuer:account`` with both parts percent-encoded (a ``:`` or ``/`` inside
    either is encoded too, so the separator stays unambiguous); the ``issuer`` parameter repeats
    the issuer. ``digits`` and ``period`` are written only when they differ from the defaults
    every authenticator app assumes. The result is plain ASCII.
    """
    label = f"{_encode(issuer)}:{_encode(account)}"
    query = [("secret", secret), ("issuer", issuer)]
    if digits != 6:
        query.append(("digits", str(digits)))
    if period != 30:
        query.append(("period", str(period)))
    params = "&".join(f"{name}={_encode(value)}" for name, value in query)
    return f"otpauth://totp/{label}?{params}"


_DARK_RUN = re.compile(rb"\x01+")


def svg_markup(matrix: Sequence[bytes | bytearray], css_class: str) -> str:
    """The SVG segno's ``svg_inline`` writes for ``qr_svg``'s options (scale 1, a quiet zone of
    ``QUIET_ZONE_MODULES``, ``#000`` on ``#fff``, no size, no line class), byte for byte
    (``tests/test_qr.py``), but each row's dark runs found by a regular expression instead of
    a Python step per module: the same path of runs, each moved to relative to the last."""
    border = QUIET_ZONE_MODULES
    side = len(matrix) + 2 * border
    moves = []
    last_x = last_y = None
    for number, row in enumerate(matrix):
        y = number + border
        for run in _DARK_RUN.finditer(row):
            x = run.start() + border
            if last_x is None:
                moves.append(f"M{x} {y}.5h{run.end() - run.start()}")
            else:
                moves.append(f"m{x - last_x} {y - last_y}h{run.end() - run.start()}")
            last_x, last_y = run.end() + border, y
    return (
        f'<svg viewBox="0 0 {side} {side}" class={quoteattr(css_class)}>'
        f'<path fill="#fff" d="M0 0h{side}v{side}h-{side}z"/>'
        f'<path stroke="#000" d="{"".join(moves)}"/></svg>'
    )


def qr_svg(data: str, *, css_class: str = "qr-code") -> SafeString:
    """Inline SVG markup of a QR code for ``data`` (error correction level M), safe for HTML.

    One SVG unit is one module: the ``viewBox`` spans the symbol plus a white quiet zone of
    ``QUIET_ZONE_MODULES`` on each side, and the element has no ``width``/``height``, so CSS
    decides its size. There is no ``style`` attribute and no script: nothing the CSP blocks.
    The markup is segno's (``svg_markup``).
    """
    svg = svg_markup(segno.make(data, error="m").matrix, css_class)
    svg = svg.replace("<svg ", '<svg shape-rendering="crispEdges" aria-hidden="true" ', 1)
    return mark_safe(svg)  # noqa: S308 - drawn from segno's matrix, the class attribute quoted
