"""``{% field_row field %}``: a form field with its label, help and errors, as
``templates/keys/includes/field.html`` writes it, in Python (issue 10).

Every field of every form page went through that include: a template lookup, a context, some
fifteen nodes; about 0.1 ms a field, a dozen fields an activation. The tag writes the same HTML
with Django's own escaping (``conditional_escape``: lazy strings, ``SafeData``) and the same
translated "Error:"; ``tests/test_form_fields.py`` renders both for every field of the service's
forms, bound and unbound, valid and not, in each language, and compares them byte for byte.
The include stays the reference (and what a template may still include).
"""

from __future__ import annotations

from django import template
from django.forms import BoundField
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def field_row(field: BoundField) -> SafeString:
    if not isinstance(field, BoundField):  # a field the form does not have: no broken row
        return mark_safe("")
    errors = field.errors
    auto_id = conditional_escape(field.auto_id)
    parts = [
        '<div class="field has-error">\n' if errors else '<div class="field">\n',
        f'  <label for="{conditional_escape(field.id_for_label)}">',
        conditional_escape(field.label),
        ' <span class="required" aria-hidden="true">*</span></label>\n'
        if field.field.required
        else "</label>\n",
    ]
    help_text = field.help_text
    if help_text:
        # ``|safe``, as in the template: help texts are the service's own HTML.
        parts.append(f'  <div class="help" id="{auto_id}_helptext">{help_text}</div>\n')
    else:
        parts.append("  \n")
    if errors:
        listed = " ".join(conditional_escape(error) for error in errors)
        parts.append(
            f'  <p class="field-error" id="{auto_id}_error"><span class="visually-hidden">'
            f"{conditional_escape(gettext('Error:'))} </span>{listed}</p>\n"
        )
    else:
        parts.append("  \n")
    parts.append(f"  {conditional_escape(field)}\n</div>\n")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped
