"""Template helpers that ask the kinds of key (``keys.digital_keys``), so that generic templates
never name a kind:

- ``{% kind_scripts %}``: the static scripts of every kind (``KeyKind.script``), for the pages
  that offer every kind or sign in; ``{% kind_scripts kind %}``: the script of one kind;
- ``{% key_kinds as kinds %}``: the registered kinds (for their ``signin_template``, say);
- ``{% ceremony_data key purpose %}``: the data a ``ceremony_template`` gives the kind's script
  (``KeyKind.ceremony_data``);
- ``{{ key|remove_label }}``: the link text that removes a key (``KeyKind.remove_label``).
"""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from keys.digital_keys import KINDS, KeyKind, get_kind
from keys.models import DigitalKey

register = template.Library()


@register.simple_tag
def kind_scripts(kind: KeyKind | None = None) -> SafeString:
    kinds = [kind] if kind is not None else list(KINDS.values())
    scripts = list(dict.fromkeys(k.script for k in kinds if k and k.script))
    return format_html_join("", '<script src="{}"></script>', ((static(s),) for s in scripts))


@register.simple_tag
def key_kinds() -> list[KeyKind]:
    return list(KINDS.values())


@register.simple_tag(takes_context=True)
def ceremony_data(context: template.Context, key: DigitalKey, purpose: str) -> SafeString:
    return get_kind(key.kind).ceremony_data(context["request"], key, purpose)


@register.filter
def remove_label(key: DigitalKey) -> str:
    return get_kind(key.kind).remove_label(key)
