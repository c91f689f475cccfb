"""The helpdesk keeps no data of its own: it reads and acts on ``keys``' models.

``HelpdeskAccess`` exists only to carry the helpdesk's permissions (a proxy of ``Citizen``, so
no table): ``helpdesk.use_helpdesk`` and the actions beyond the admin's, granted to the groups by
``helpdesk/migrations/0002_roles.py``.
"""

from django.utils.translation import gettext_lazy as _

from keys.models import Citizen


class HelpdeskAccess(Citizen):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("helpdesk access")
        verbose_name_plural = _("helpdesk access")
        permissions = [
            ("use_helpdesk", _("Can open the helpdesk's citizen pages and export their activity")),
            ("block_digitalkey", _("Can block a citizen's digital key")),
            ("unlock_signin", _("Can lift a sign-in lockout")),
            ("view_funnel", _("Can see the activation funnel")),
        ]
