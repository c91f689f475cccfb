"""Assurance levels as services name them: FAS ``acr`` values (``...:citizen:LevelNNN``).

The levels themselves are the keys' (``keys.digital_keys.LEVELS``, ``level_of``); the setting
``OIDC_ACR_VALUES`` maps each to the acr value a service receives. A service asks for an acr
value (``acr_values``) or is registered with a minimum level; both come down to a level here.

An acr value is a level only in one of FAS's forms, the whole value: ``LevelNNN``,
``urn:be:fedict:iam:fas:LevelNNN`` or ``urn:be:fedict:iam:fas:citizen:LevelNNN`` (NNN three
digits, 100 to 999), or exactly one of ``OIDC_ACR_VALUES``. Levels compare by that number, so
``xLevel500``, ``Level500x`` or ``fooLevel400`` are no level at all. "high" (FAS's Level450,
itsme, and Level500, the eID card) is a level services may ask for, which no key of this site
gives (``keys.digital_keys.SITE_LEVELS``): such a request is refused.
"""

from __future__ import annotations

import re

from django.conf import settings

from keys.digital_keys import KINDS, LEVELS, SITE_LEVELS, level_of

#: FAS's forms of an acr value, anchored at both ends.
ACR_PATTERN = re.compile(r"(?:urn:be:fedict:iam:fas:(?:citizen:)?)?Level([1-9][0-9]{2})")


def acr_of(level: str) -> str:
    """The acr value of ``level`` (``OIDC_ACR_VALUES``)."""
    return settings.OIDC_ACR_VALUES[level]


def rank(level: str) -> int:
    return LEVELS.index(level)


def acr_number(acr: str) -> int | None:
    """The ``NNN`` of an acr value in one of FAS's forms (the whole value); None otherwise."""
    match = ACR_PATTERN.fullmatch(acr or "")
    return int(match.group(1)) if match else None


class UnknownAcr(ValueError):
    """acr_values names nothing this provider knows."""


def level_for_acr(acr: str) -> str | None:
    """The lowest level that satisfies ``acr``: the level whose value it is, else the lowest
    whose number is at least the one asked; None when no level reaches it. Raises
    :class:`UnknownAcr` for a value that is no level (not one of FAS's forms)."""
    for level in LEVELS:
        if acr_of(level) == acr:
            return level
    wanted = acr_number(acr)
    if wanted is None:
        raise UnknownAcr(acr)
    for level in LEVELS:
        number = acr_number(acr_of(level))
        if number is not None and number >= wanted:
            return level
    return None


def required_level(acr_values: str, minimum: str) -> str | None:
    """The level a request needs: the service's ``minimum``, raised to what ``acr_values`` asks
    (the lowest of its values, each of them being acceptable to the service). None when
    ``acr_values`` asks for more than any level gives; :class:`UnknownAcr` when it names no
    level at all (values that are no level are ignored beside one that is)."""
    asked = [value for value in (acr_values or "").split() if value]
    level = minimum
    if asked:
        levels: list[str | None] = []
        for value in asked:
            try:
                levels.append(level_for_acr(value))
            except UnknownAcr:
                continue
        if not levels:
            raise UnknownAcr(acr_values[:100])
        known = [candidate for candidate in levels if candidate]
        if not known:
            return None
        lowest = min(known, key=rank)
        if rank(lowest) > rank(level):
            level = lowest
    return level


def reachable(level: str | None) -> bool:
    """Whether a sign-in on this site can reach ``level`` at all (with any kind of key)."""
    return level is not None and level in SITE_LEVELS and rank(level) <= rank(best_possible_level())


def best_possible_level() -> str:
    """The highest level any kind of key gives."""
    return max((level_of(kind) for kind in KINDS), key=rank)


def best_level_of(kinds: list[str]) -> str | None:
    levels = [level_of(kind) for kind in kinds if kind in KINDS]
    return max(levels, key=rank) if levels else None
