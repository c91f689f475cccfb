from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OidcConfig(AppConfig):
    name = "oidc"
    verbose_name = _("Government services (OpenID Connect)")
    default_auto_field = "django.db.models.BigAutoField"
