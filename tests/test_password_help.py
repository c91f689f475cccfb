"""The password rules shown beside a new password: built once per language and validators,
always what Django's ``password_validators_help_text_html`` says for them."""

from django.contrib.auth import password_validation
from django.utils import translation

from keys.forms import AccountForm, password_help


def test_the_rules_are_djangos_in_each_language():
    texts = {}
    for language in ("nl", "fr", "de", "en"):
        with translation.override(language):
            texts[language] = password_help()
            assert texts[language] == password_validation.password_validators_help_text_html()
            assert password_help() is texts[language]  # built once
    assert len(set(texts.values())) == 4
    assert "8" in texts["nl"]


def test_changed_validators_change_the_rules(settings):
    with translation.override("en"):
        before = password_help()
        settings.AUTH_PASSWORD_VALIDATORS = [
            {
                "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
                "OPTIONS": {"min_length": 23},
            }
        ]
        after = password_help()
        assert after != before and "23" in after
        assert AccountForm().fields["password"].help_text == after
