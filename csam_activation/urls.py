"""URL configuration: the citizen's pages carry their language (/nl/, /fr/, /de/, /en/)."""

from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # /healthz, /readyz, /metrics: no language prefix, no session (ops/views.py)
    path("", include("ops.urls")),
    # the helpdesk's pages, in the admin's look, for staff (helpdesk/urls.py)
    path("admin/helpdesk/", include("helpdesk.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]
# the OpenID Connect provider (oidc/urls.py): /.well-known/openid-configuration and /oidc/...
if settings.OIDC_PROVIDER_ENABLED:
    urlpatterns.append(path("", include("oidc.urls")))
urlpatterns += i18n_patterns(
    path("", include("keys.urls")),
    path("", include("oidc.account_urls")),
    prefix_default_language=True,
)
