from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


def update_last_login(sender: Any, user: Any, **kwargs: Any) -> None:
    """Django's ``update_last_login`` as one prepared UPDATE of the column (issue 10): its
    ``user.save(update_fields=["last_login"])`` compiles the statement and sends the model's
    save signals on every sign-in, about 0.2 ms of CPU. Connected under Django's own
    ``dispatch_uid``, in its place."""
    from django.utils import timezone

    from keys.prepared import update_row

    user.last_login = timezone.now()
    update_row(type(user), user.pk, last_login=user.last_login)


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = _("My digital keys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from keys import checks  # noqa: F401 - registers the deployment checks

        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")


class StaffAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the back office's own site as ``admin.site``
    (``keys.staff_site.StaffAdminSite``: staff sign-in with lockout, second factor and idle
    timeout), in ``INSTALLED_APPS`` in place of ``django.contrib.admin``."""

    default = False  # "keys" stays KeysConfig
    default_site = "keys.staff_site.StaffAdminSite"
