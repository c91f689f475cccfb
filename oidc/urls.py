"""The provider's endpoints, under django-oauth-toolkit's URL names (namespace
``oauth2_provider``, which its views reverse): discovery at the root, the rest under /oidc/.
Not language-prefixed: services call them; the pages they show follow ``ui_locales``."""

from django.urls import path
from oauth2_provider import views as dot

from oidc import views

app_name = "oauth2_provider"

urlpatterns = [
    path(
        ".well-known/openid-configuration",
        views.DiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path("oidc/authorize/", views.AuthorizeView.as_view(), name="authorize"),
    path("oidc/token/", views.RateLimitedTokenView.as_view(), name="token"),
    path("oidc/revoke/", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("oidc/userinfo/", views.HeaderOnlyUserInfoView.as_view(), name="user-info"),
    path("oidc/jwks/", dot.JwksInfoView.as_view(), name="jwks-info"),
    path("oidc/logout/", views.LogoutView.as_view(), name="rp-initiated-logout"),
]
