"""The passkey kind's own pages, added to the ``keys`` namespace by ``keys/urls.py``
(``PasskeyKind.urlpatterns``): ``keys:signin-passkey-options``, ``keys:signin-passkey`` and
``keys:passkey-usernameless``."""

from django.urls import path

from keys.digital_keys.passkey import views

urlpatterns = [
    path(
        "aanmelden/passkey/opties/",
        views.signin_passkey_options_view,
        name="signin-passkey-options",
    ),
    path("aanmelden/passkey/", views.signin_passkey_view, name="signin-passkey"),
    path(
        "mijn-sleutels/<int:key_id>/passkey-alleen/",
        views.passkey_usernameless_view,
        name="passkey-usernameless",
    ),
]
