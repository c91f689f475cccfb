"""The header's and footer's language-only parts are rendered once per language and process
(templates/base.html, CACHES["fragments"]); what belongs to one page or one browser never is."""

from __future__ import annotations

import re

import pytest
from django.core.cache import caches
from django.test import Client


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def footer(html: str) -> str:
    return html[html.index('<footer class="site-footer">') : html.index("</footer>")]


def header(html: str) -> str:
    return html[html.index('<header class="site-header">') : html.index("</header>")]


def without_token(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "TOKEN", html)


@pytest.mark.django_db
def test_each_language_gets_its_own_header_and_footer(client):
    dutch = page(client, "/nl/aanmelden/")
    french = page(client, "/fr/aanmelden/")
    # The cached parts are in each page's language, links included.
    assert 'href="/nl/mijn-sleutels/"' in footer(dutch)
    assert 'href="/fr/mijn-sleutels/"' in footer(french)
    assert footer(dutch) != footer(french)
    assert 'value="nl" lang="nl" aria-current="true"' in header(dutch)
    assert 'value="fr" lang="fr" aria-current="true"' in header(french)
    assert 'value="nl" lang="nl" aria-current="true"' not in header(french)
    # Served again from the cache: the same page.
    assert without_token(page(client, "/nl/aanmelden/")) == without_token(dutch)


@pytest.mark.django_db
def test_the_cached_page_equals_the_page_rendered_without_the_cache(client, settings):
    settings.CACHES = {
        **settings.CACHES,
        "fragments": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    uncached = [page(client, path) for path in ("/nl/", "/de/aanmelden/")]
    settings.CACHES = {
        **settings.CACHES,
        "fragments": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    page(client, "/nl/")  # fill the cache
    page(client, "/de/aanmelden/")
    cached = [page(client, path) for path in ("/nl/", "/de/aanmelden/")]
    assert [without_token(html) for html in cached] == [without_token(html) for html in uncached]


@pytest.mark.django_db
def test_the_token_and_the_path_of_each_page_are_never_cached():
    first, second = Client(), Client()
    one = header(page(first, "/nl/aanmelden/"))
    other = header(page(second, "/nl/gebruikersvoorwaarden/"))
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    assert token.search(one).group(1) != token.search(other).group(1)
    assert '<input type="hidden" name="next" value="/nl/aanmelden/">' in one
    assert '<input type="hidden" name="next" value="/nl/gebruikersvoorwaarden/">' in other
    # What the cache holds has no form token and no page's path in it.
    held = b"".join(caches["fragments"]._cache.values())
    assert held and b"csrfmiddlewaretoken" not in held and b'name="next"' not in held


@pytest.mark.django_db
def test_the_wizards_cached_parts_equal_the_uncached_pages(citizen, clerk, settings):
    """The stepper (per stage) and the steps' fixed introductions are cached per language; each
    wizard page, in one language after the other (one cache), equals the same page rendered
    with no cache at all."""
    from keys.services import issuance
    from tests.wizard_helpers import post_step

    cached_backend = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    no_cache = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}

    def both(client: Client, path: str) -> tuple[str, str]:
        settings.CACHES = {**settings.CACHES, "fragments": cached_backend}
        cached = page(client, path)
        settings.CACHES = {**settings.CACHES, "fragments": no_cache}
        return without_token(cached), without_token(page(client, path))

    for language in ("nl", "fr", "nl"):
        client = Client()
        issued = issuance.issue_activation(citizen, issued_by=clerk)
        client.get(issued.activation_link.replace("http://testserver/nl/", f"/{language}/"))
        steps = [
            ("code", {"activation_code": issued.formatted_code}),
            ("key", {"kind": "totp", "accept_terms": "on"}),
        ]
        for step, data in steps:
            cached, uncached = both(client, f"/{language}/activatie/{step}/")
            assert cached == uncached, (language, step)
            assert 'aria-current="step"' in cached
            post_step(client, step, data)
        cached, uncached = both(client, f"/{language}/activatie/account/")
        assert cached == uncached, (language, "account")
