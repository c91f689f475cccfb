"""``{% field_row field %}`` (keys/templatetags/form_fields.py) writes exactly what the include
``keys/includes/field.html`` writes: every field of the service's forms, unbound and bound with
errors, in each language, byte for byte."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation
from django.utils.safestring import mark_safe

from keys import forms

INCLUDE = Template('{% include "keys/includes/field.html" %}')
TAG = Template("{% load form_fields %}{% field_row field %}")


def all_forms(bad: dict | None) -> list:
    def wrong(_value):
        raise AssertionError("not called: the data is refused before")

    made = [
        forms.ActivationCodeForm(bad),
        forms.KeyChoiceForm(bad),
        forms.AccountForm(bad),
        forms.AccountForm(bad, prefix="account"),
        forms.VerifyForm(bad, label="Beveiligingscode", digits=6, check=wrong),
        forms.SignInForm(bad),
        forms.CurrentPasswordForm(bad),
        forms.NewPasswordForm(bad),
        forms.ActivatedForm(bad),
    ]
    if bad is not None:
        for form in made:
            form.is_valid()
            # An error with markup in it, as a message could carry: escaped by both.
            first = next(iter(form.fields))
            form.add_error(first, "<b>&amp; “quoted”</b>")
    return made


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
@pytest.mark.parametrize("bad", [None, {"activation_code": "<x>", "username": 'a"b', "code": "1"}])
def test_the_tag_writes_what_the_include_writes(db, language, bad):
    compared = 0
    with translation.override(language):
        for form in all_forms(bad):
            for field in form:
                context = {"field": field, "form": form}
                assert TAG.render(Context(context)) == INCLUDE.render(Context(context)), (
                    type(form).__name__,
                    field.name,
                )
                compared += 1
    assert compared > 15


def test_labels_and_help_are_escaped_or_kept_as_the_template_does(db):
    form = forms.SignInForm()
    form.fields["username"].label = "<i>name</i> & co"
    form.fields["username"].help_text = mark_safe("<em>safe</em>")
    field = form["username"]
    written = TAG.render(Context({"field": field}))
    assert written == INCLUDE.render(Context({"field": field}))
    assert "&lt;i&gt;name&lt;/i&gt; &amp; co" in written and "<em>safe</em>" in written


def test_the_templates_use_the_tag():
    """The pages call the tag; none includes the row template any more."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    sources = {p: p.read_text() for p in root.rglob("*.html")}
    assert not [p for p, text in sources.items() if "includes/field.html" in text]
    assert sum("{% field_row" in text for text in sources.values()) >= 8
