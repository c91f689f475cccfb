"""The form renderer (issue 10): the ``<input>`` widgets written in Python, not through templates.

Django renders every widget through its template engine: ``text.html`` includes ``input.html``,
which includes ``attrs.html``; some 0.2-0.3 ms of CPU per widget, and a page of the activation
wizard has a dozen. ``FastInputRenderer`` writes the HTML of those templates itself, with
Django's own functions for each ``{{ ... }}`` (``render_value_in_context``: autoescape, lazy
strings, ``SafeData``; the ``stringformat`` filter and its ``is_safe`` rule), so the output is
the templates' output byte for byte (``tests/test_forms_renderer.py`` compares them).

Only what is sure to be those templates takes the short way:

* the names in ``_FAST``, and only while the renderer's engine finds for each of them, and for
  ``input.html`` and ``attrs.html``, exactly the text written in ``_SOURCES`` (checked once, on
  the first render): a project or app template that overrides one of them, or a Django release
  that changes one, sends that name back to the templates;
* a context that is exactly ``{"widget": dict}`` with plain values: anything a template would
  treat differently (a callable, which the template calls; an ``attrs`` key named ``items``,
  which ``widget.attrs.items`` would look up; a dict subclass; a missing key) goes to the
  templates too.

Every other template (select, textarea, multiple_input, the form and error templates) is
``DjangoTemplates.render``, as before.
"""

from __future__ import annotations

import html

from django.forms.renderers import DjangoTemplates
from django.template import Context, TemplateDoesNotExist
from django.template.base import render_value_in_context
from django.template.defaultfilters import stringformat
from django.utils.functional import cached_property
from django.utils.safestring import SafeData, mark_safe

_W = "django/forms/widgets/"
_INCLUDE_INPUT = '{% include "django/forms/widgets/input.html" %}\n'
_INCLUDE_OPTION = '{% include "django/forms/widgets/input_option.html" %}\n'

# The templates' text in Django 6.1, as the fast path writes it.
_SOURCES = {
    _W + "input.html": (
        '<input type="{{ widget.type }}" name="{{ widget.name }}"{% if widget.value != None %}'
        " value=\"{{ widget.value|stringformat:'s' }}\"{% endif %}"
        '{% include "django/forms/widgets/attrs.html" %}>\n'
    ),
    _W + "attrs.html": (
        "{% for name, value in widget.attrs.items %}{% if value is not False %} {{ name }}"
        "{% if value is not True %}=\"{{ value|stringformat:'s' }}\"{% endif %}{% endif %}"
        "{% endfor %}"
    ),
    _W + "input_option.html": (
        '{% if widget.wrap_label %}<label{% if widget.attrs.id %} for="{{ widget.attrs.id }}"'
        '{% endif %}>{% endif %}{% include "django/forms/widgets/input.html" %}'
        "{% if widget.wrap_label %} {{ widget.label }}</label>{% endif %}\n"
    ),
    **{
        _W + name + ".html": _INCLUDE_INPUT
        for name in (
            *("checkbox", "color", "date", "datetime", "email", "file", "hidden"),
            *("number", "password", "search", "tel", "text", "time", "url"),
        )
    },
    _W + "radio_option.html": _INCLUDE_OPTION,
    _W + "checkbox_option.html": _INCLUDE_OPTION,
}
# The names rendered here, and the templates each of them reads.
_FAST = {
    name: (name, _W + "input.html", _W + "attrs.html")
    + ((_W + "input_option.html",) if source == _INCLUDE_OPTION else ())
    for name, source in _SOURCES.items()
    if source in (_INCLUDE_INPUT, _INCLUDE_OPTION)
}
_FAST[_W + "input.html"] = (_W + "input.html", _W + "attrs.html")
_FAST[_W + "input_option.html"] = (_W + "input_option.html", _W + "input.html", _W + "attrs.html")

# What the renderer's templates see: a Context with autoescape on, use_l10n and use_tz unset.
_CONTEXT = Context()


def _out(value) -> str:
    """``{{ value }}``."""
    if type(value) is str:  # what render_value_in_context comes to for a plain str
        return html.escape(value)
    return render_value_in_context(value, _CONTEXT)


def _out_s(value) -> str:
    """``{{ value|stringformat:'s' }}`` (``is_safe``: a SafeData value stays unescaped)."""
    if type(value) is str:  # "%s" % value is value; then as in _out
        return html.escape(value)
    formatted = stringformat(value, "s")
    if isinstance(value, SafeData):
        formatted = mark_safe(formatted)  # noqa: S308 - the template filter's own rule
    return render_value_in_context(formatted, _CONTEXT)


def _plain(widget, option: bool) -> bool:
    """The widget dict is one the fast path renders exactly like the templates."""
    if type(widget) is not dict:
        return False
    try:
        attrs = widget["attrs"]
        values = [widget["type"], widget["name"], widget["value"]]
        if option:
            values += [widget["wrap_label"], widget["label"]]
    except KeyError:
        return False
    if type(attrs) is not dict or "items" in attrs:
        return False
    return not any(callable(v) for v in (*values, *attrs, *attrs.values()))


def _input(widget) -> str:
    """``input.html`` with ``attrs.html``."""
    parts = ['<input type="', _out(widget["type"]), '" name="', _out(widget["name"]), '"']
    value = widget["value"]
    if value != None:  # noqa: E711 - the template's ``!= None``
        parts += [' value="', _out_s(value), '"']
    for name, attr in widget["attrs"].items():
        if attr is not False:
            parts += [" ", _out(name)]
            if attr is not True:
                parts += ['="', _out_s(attr), '"']
    parts.append(">")
    return "".join(parts)


def _option(widget) -> str:
    """``input_option.html``."""
    if not widget["wrap_label"]:
        return _input(widget)
    label_id = widget["attrs"].get("id")
    return "".join(
        (
            "<label",
            f' for="{_out(label_id)}"' if label_id else "",
            ">",
            _input(widget),
            "\n ",  # the included input.html ends with a newline
            _out(widget["label"]),
            "</label>",
        )
    )


class FastInputRenderer(DjangoTemplates):
    """``DjangoTemplates``, with the input widgets' templates written in Python."""

    @cached_property
    def fast_names(self) -> frozenset[str]:
        """The names of ``_FAST`` whose templates, as this engine finds them, are ``_SOURCES``."""
        sources = {}
        for name in _SOURCES:
            try:
                sources[name] = self.get_template(name).template.source
            except (TemplateDoesNotExist, AttributeError):  # not found, or not a Django template
                sources[name] = None
        return frozenset(
            name for name, reads in _FAST.items() if all(sources[r] == _SOURCES[r] for r in reads)
        )

    def render(self, template_name, context, request=None):
        if template_name in self.fast_names and type(context) is dict and len(context) == 1:
            widget = context.get("widget")
            option = template_name.endswith("option.html")
            if _plain(widget, option):
                return (_option if option else _input)(widget)
        return super().render(template_name, context, request=request)
