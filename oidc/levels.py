"""Assurance levels as services name them: FAS ``acr`` values (``...:citizen:LevelNNN``).

The levels themselves are the keys' (``keys.digital_keys.LEVELS``, ``level_of``); the setting
``OIDC_ACR_VALUES`` maps each to the acr value a service receives. A service asks for an acr
value (``acr_values``) or is registered with a minimum level; both come down to a level here.
"""

from __future__ import annotations

import re

from django.conf import settings

from keys.digital_keys import KINDS, LEVELS, level_of

_NUMBER = re.compile(r"Level(\d+)$")


def acr_of(level: str) -> str:
    """The acr value of ``level`` (``OIDC_ACR_VALUES``)."""
    return settings.OIDC_ACR_VALUES[level]


def rank(level: str) -> int:
    return LEVELS.index(level)


def level_for_acr(acr: str) -> str | None:
    """The lowest level that satisfies ``acr``: the level whose value it is, else the lowest
    whose ``LevelNNN`` number is at least the one asked; None when no level reaches it."""
    for level in LEVELS:
        if acr_of(level) == acr:
            return level
    match = _NUMBER.search(acr or "")
    if not match:
        return None
    wanted = int(match.group(1))
    for level in LEVELS:
        number = _NUMBER.search(acr_of(level))
        if number and int(number.group(1)) >= wanted:
            return level
    return None


class UnknownAcr(ValueError):
    """acr_values names nothing this provider knows."""


def required_level(acr_values: str, minimum: str) -> str | None:
    """The level a request needs: the service's ``minimum``, raised to what ``acr_values`` asks
    (the lowest of its values, each of them being acceptable to the service). None when
    ``acr_values`` asks for more than any level gives."""
    asked = [value for value in (acr_values or "").split() if value]
    level = minimum
    if asked:
        levels = [level_for_acr(value) for value in asked]
        known = [candidate for candidate in levels if candidate]
        if not known:
            return None
        lowest = min(known, key=rank)
        if rank(lowest) > rank(level):
            level = lowest
    return level


def best_possible_level() -> str:
    """The highest level any kind of key gives."""
    return max((level_of(kind) for kind in KINDS), key=rank)


def best_level_of(kinds: list[str]) -> str | None:
    levels = [level_of(kind) for kind in kinds if kind in KINDS]
    return max(levels, key=rank) if levels else None
