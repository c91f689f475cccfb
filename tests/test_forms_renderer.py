"""``keys.forms_renderer.FastInputRenderer``: the input widgets it writes in Python are, byte for
byte, what Django's templates write for the same context; every other template goes to them."""

from __future__ import annotations

import datetime
from contextlib import contextmanager
from unittest import mock

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy, override

from keys.forms_renderer import _FAST, FastInputRenderer

FAST = FastInputRenderer()
TEMPLATES = DjangoTemplates()
W = "django/forms/widgets/"

INPUT_NAMES = [
    W + name + ".html"
    for name in (
        *("checkbox", "color", "date", "datetime", "email", "file", "hidden", "input"),
        *("number", "password", "search", "tel", "text", "time", "url"),
    )
]
OPTION_NAMES = [W + "input_option.html", W + "radio_option.html", W + "checkbox_option.html"]

NASTY = "<script>alert('x & \"y\"')</script>"
VALUES = [
    None,
    "",
    "plain",
    NASTY,
    "é ü – ✓",
    0,
    1234567,
    -3.5,
    True,
    False,
    ("a", "<b>"),
    ["x", "<y>"],
    datetime.date(2026, 11, 26),
    gettext_lazy("Password"),
    mark_safe("<b>safe</b>"),
    "%s %d %%",
]
ATTRS = [
    {},
    {"id": "id_0-name"},
    {"id": "id_wizard-code", "required": True, "autofocus": True},
    {"required": False, "disabled": True, "checked": True},
    {"aria-describedby": "id_code_helptext id_code_error", "aria-invalid": "true"},
    {"maxlength": 6, "minlength": 0, "size": None, "step": 0.5},
    {"class": 'a"b<c>&d', "data-x": NASTY, "placeholder": gettext_lazy("Email address")},
    {"title": mark_safe("<i>t</i>"), "pattern": "[0-9]{6}"},
    {"value": "twice", "name": "also"},
]


def widget_context(name: str, value, attrs: dict, input_type: str = "text", **extra) -> dict:
    return {
        "widget": {
            "name": name,
            "is_hidden": input_type == "hidden",
            "required": bool(attrs.get("required")),
            "value": value,
            "attrs": dict(attrs),
            "template_name": W + input_type + ".html",
            "type": input_type,
            **extra,
        }
    }


def both(template_name: str, context: dict) -> tuple[str, str]:
    return FAST.render(template_name, context), TEMPLATES.render(template_name, context)


def test_all_names_are_fast():
    """Django's templates are still those the renderer writes (a release changing one of them
    would quietly send it back to the templates; this says so)."""
    assert FAST.fast_names == frozenset(INPUT_NAMES + OPTION_NAMES)
    assert set(_FAST) == FAST.fast_names


@pytest.mark.parametrize("template_name", INPUT_NAMES)
@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("attrs", ATTRS, ids=repr)
def test_input_context_as_the_templates(template_name, value, attrs):
    context = widget_context("wizard-<name>", value, attrs, "hidden")
    fast, slow = both(template_name, context)
    assert fast == slow


@pytest.mark.parametrize("template_name", OPTION_NAMES)
@pytest.mark.parametrize("wrap_label", [True, False, "", 1])
@pytest.mark.parametrize("label", ["Sleutel", NASTY, gettext_lazy("Email"), 7, ""], ids=repr)
@pytest.mark.parametrize("attrs", ATTRS, ids=repr)
def test_option_context_as_the_templates(template_name, wrap_label, label, attrs):
    context = widget_context(
        "kind", "sms", attrs, "radio", wrap_label=wrap_label, label=label, index="0"
    )
    fast, slow = both(template_name, context)
    assert fast == slow


class Everything(forms.Form):
    text = forms.CharField(max_length=20, help_text="h")
    code = forms.CharField(
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"})
    )
    phone = forms.CharField(
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"})
    )
    password = forms.CharField(widget=forms.PasswordInput(render_value=True))
    hidden = forms.CharField(widget=forms.HiddenInput)
    email = forms.EmailField(label=gettext_lazy("Email address"))
    number = forms.IntegerField(min_value=0, max_value=999999)
    decimal = forms.DecimalField(max_digits=8, decimal_places=2)
    url = forms.URLField(required=False)
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False)
    when = forms.DateTimeField(required=False)
    at = forms.TimeField(required=False)
    colour = forms.CharField(widget=forms.TextInput(attrs={"type": "color"}), required=False)
    agree = forms.BooleanField(required=False)
    kind = forms.ChoiceField(
        choices=[("sms", "SMS <code>"), ("totp", gettext_lazy("App")), ("email", "E-mail")],
        widget=forms.RadioSelect,
    )
    many = forms.MultipleChoiceField(
        choices=[("a", "A & a"), ("b", "B")], widget=forms.CheckboxSelectMultiple, required=False
    )
    pick = forms.ChoiceField(choices=[("1", "<one>"), ("2", "two")])
    note = forms.CharField(widget=forms.Textarea, required=False)
    upload = forms.FileField(required=False)


DATA = {
    "text": NASTY[:20],
    "code": "12 34 56",
    "phone": "+32 470 12 34 56",
    "password": "p<a>ss\"w'ord&",
    "hidden": "another",
    "email": "a&b@example.be",
    "number": "1234567",
    "decimal": "12.5",
    "url": "javascript:alert(1)",
    "day": "2026-11-26",
    "when": "2026-11-26 10:00",
    "at": "10:00",
    "colour": "#ff0000",
    "agree": "on",
    "kind": "totp",
    "many": ["a", "b"],
    "pick": "2",
    "note": NASTY,
}


def render_all(form: forms.Form) -> list[str]:
    out = []
    for field in form:
        out.append(field.as_widget())
        out.append(field.as_hidden())
        out.extend(str(subwidget) for subwidget in field.subwidgets)
        out.extend(subwidget.tag() for subwidget in field.subwidgets)
    out.append(form.render())
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prefix": "0"},
        {"data": DATA},
        {"data": DATA, "prefix": "wizard-<x>", "auto_id": "id_%s"},
        {"data": {"agree": "", "kind": "nope", "number": "-1"}, "auto_id": False},
        {"initial": {"text": "in<it>", "agree": True, "kind": "sms", "number": 0}},
    ],
    ids=repr,
)
@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_forms_as_the_templates(kwargs, language):
    """Whole forms, bound and unbound, every field as widget, as hidden and option by option."""
    with override(language):
        fast = render_all(Everything(renderer=FAST, **kwargs))
        slow = render_all(Everything(renderer=TEMPLATES, **kwargs))
    assert fast == slow
    assert fast[0].startswith("<input")


def test_input_names_do_not_go_to_the_templates():
    with templates_spied() as names:
        for name in INPUT_NAMES + OPTION_NAMES:
            FAST.render(name, widget_context("x", "v", {"id": "id_x"}, wrap_label=True, label="L"))
    assert names == []


def test_the_project_renders_with_it():
    assert isinstance(get_default_renderer(), FastInputRenderer)
    assert isinstance(Everything().renderer, FastInputRenderer)


def test_the_fast_path_escapes():
    """Not only equal to the templates: what a wrong escaping would let through."""
    html = forms.TextInput(attrs={"data-x": '"><script>alert(1)</script>'}).render(
        "q", "<script>x</script>", renderer=FAST
    )
    assert "<script>" not in html
    assert html == (
        '<input type="text" name="q" value="&lt;script&gt;x&lt;/script&gt;"'
        ' data-x="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">'
    )
    assert forms.CheckboxInput().render("a", True, attrs={"id": "id_a"}, renderer=FAST) == (
        '<input type="checkbox" name="a" id="id_a" checked>'
    )


def test_an_escaping_mistake_fails_the_comparison():
    """The comparison catches a fast path that forgets to escape a value."""
    context = widget_context("q", NASTY, {})
    with mock.patch("keys.forms_renderer._out_s", lambda value: str(value)):
        fast, slow = both(W + "text.html", context)
    assert fast != slow


@contextmanager
def templates_spied():
    """The names ``DjangoTemplates.render`` (the templates) is asked for."""
    names = []
    real = DjangoTemplates.render

    def spy(self, template_name, context, request=None):
        names.append(template_name)
        return real(self, template_name, context, request)

    with mock.patch.object(DjangoTemplates, "render", spy):
        yield names


@pytest.mark.parametrize(
    "template_name",
    [
        W + "select.html",
        W + "select_option.html",
        W + "textarea.html",
        W + "radio.html",
        W + "checkbox_select.html",
        W + "multiple_input.html",
        W + "clearable_file_input.html",
        W + "multiwidget.html",
        "django/forms/div.html",
        "django/forms/p.html",
        "django/forms/errors/list/default.html",
        "django/forms/field.html",
    ],
)
def test_other_templates_go_to_the_templates(template_name):
    with templates_spied() as names:
        FAST.render(template_name, widget_context("x", "v", {}))
    assert names == [template_name]


@pytest.mark.parametrize(
    "unusual",
    [
        widget_context("x", "v", {"items": [("k", "<v>")]}),  # widget.attrs.items: this key
        widget_context("x", lambda: "called", {}),  # the template calls a callable
        widget_context("x", "v", {"title": lambda: "called"}),
        {**widget_context("x", "v", {}), "extra": 1},
        {"widget": {"name": "x", "type": "text", "attrs": {}}},  # no value
        {"widget": {"name": "x", "type": "text", "value": "v", "attrs": None}},
    ],
    ids=repr,
)
def test_unusual_contexts_go_to_the_templates(unusual):
    with templates_spied() as names:
        fast = FAST.render(W + "text.html", unusual)
    assert names == [W + "text.html"]
    assert fast == TEMPLATES.render(W + "text.html", unusual)


def test_an_overridden_template_goes_to_the_templates():
    """A template that is not Django's (an app's override, another Django) is not fast-pathed,
    nor are the names that include it."""
    renderer = FastInputRenderer()
    real = renderer.get_template

    def get_template(name):
        template = real(name)
        if name == W + "input_option.html":
            template = mock.Mock(wraps=template, template=mock.Mock(source="<p>other</p>"))
        return template

    with mock.patch.object(renderer, "get_template", get_template):
        names = renderer.fast_names
    assert W + "text.html" in names
    assert not {W + "input_option.html", W + "radio_option.html"} & names
