"""The citizen's side: the services they allowed, on "My digital keys" (language-prefixed)."""

from django.urls import path

from oidc import account_views

app_name = "oidc"

urlpatterns = [
    path(
        "mijn-sleutels/diensten/<int:consent_id>/intrekken/",
        account_views.withdraw_consent_view,
        name="withdraw-consent",
    ),
]
