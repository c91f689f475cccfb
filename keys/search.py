"""Finding one citizen among a country's: the helpdesk's search, fast at a million records.

The admin's own search (``icontains`` over five columns, each an ``UPPER(...) LIKE '%...%'``)
reads every row of the table. Here the term decides what is searched, each through an index:

- a national register or BIS number as people type it (``85.07.30-033.28``, spaces, dashes):
  the digits, exactly when complete, else as a prefix (the unique column's pattern index);
- an e-mail address (anything with ``@``): case-insensitive prefix of the citizen's address
  (on PostgreSQL an index on ``UPPER(email)``, migration ``0011_search_at_scale``);
- anything else: the words of a name, partial, accent- and case-insensitive, in the stored
  ``Citizen.search_name`` (:func:`fold` of "last first", kept by ``Citizen.save``), which
  PostgreSQL searches through a ``pg_trgm`` GIN index;
- and, whatever the term, a username (case-insensitive prefix of the canonical username).

The usernames are looked up first (one small query), so that the final condition is an ``OR``
over columns of the citizen table alone, which PostgreSQL answers with a ``BitmapOr`` of
indexes; an ``OR`` reaching into the joined account table would read every citizen.
"""

from __future__ import annotations

import re
import unicodedata

from django.db.models import Q

from keys.validators import canonical_username, normalize_national_number

# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ħ": "h"}
)
_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_NOT_WORD = re.compile(r"[\W_]+")

# At most this many accounts whose username starts with the term are searched for.
USERNAME_MATCHES = 50
# Words shorter than a trigram are matched at the start of a word of the name.
TRIGRAM = 3


def fold(text: str) -> str:
    """A name as it is searched: no accents, no case, no punctuation, single spaces.

    "Lefèvre" -> "lefevre", "Çelik" -> "celik", "Müller" -> "muller", "D'Hondt" -> "dhondt",
    "Jean-Pierre" -> "jean pierre", "Øberg" -> "oberg".
    """
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = _APOSTROPHES.sub("", bare.casefold().translate(_LETTERS))
    return _NOT_WORD.sub(" ", bare).strip()


def search_name(first_name: str, last_name: str) -> str:
    """The value of ``Citizen.search_name``."""
    return fold(f"{last_name} {first_name}")[:301]


def _word(field: str, word: str) -> Q:
    if len(word) >= TRIGRAM:
        return Q(**{f"{field}__contains": word})
    # "Li", "Ng": the start of a word (a trigram index still finds " li", not "li" alone)
    return Q(**{f"{field}__startswith": word}) | Q(**{f"{field}__contains": f" {word}"})


def username_matches(term: str) -> list[int]:
    """Accounts whose username starts with the term, case-insensitively (a few at most)."""
    from keys.models import User

    canonical = canonical_username(term.strip())
    if len(canonical) < TRIGRAM or " " in canonical:
        return []
    return list(
        User.objects.filter(username_canonical__startswith=canonical)
        .order_by("username_canonical")
        .values_list("pk", flat=True)[:USERNAME_MATCHES]
    )


def citizen_condition(term: str, prefix: str = "") -> Q | None:
    """The condition on citizens (``prefix`` ``"citizen__"`` from an activation) for a search
    term typed by staff; ``None`` for an empty term."""
    term = term.strip()
    if not term:
        return None
    digits = normalize_national_number(term)
    if digits.isascii() and digits.isdigit():
        if len(digits) > 11:
            condition = Q(pk__in=[])
        elif len(digits) == 11:
            condition = Q(**{f"{prefix}national_number": digits})
        else:
            condition = Q(**{f"{prefix}national_number__startswith": digits})
    elif "@" in term:
        condition = Q(**{f"{prefix}email__istartswith": term})
    else:
        words = fold(term).split()
        if not words:
            return Q(pk__in=[])
        condition = Q()
        for word in words:
            condition &= _word(f"{prefix}search_name", word)
    accounts = username_matches(term)
    if accounts:
        condition |= Q(**{f"{prefix}account_id__in": accounts})
    return condition
