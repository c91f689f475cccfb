"""The authentication backend: Django's ``ModelBackend``, with the user of each signed-in
request read by a prepared read (``keys.prepared``: its SQL built once per connection; the
ORM built it on every request of a signed-in citizen or staff member)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import backends

from keys.models import User
from keys.prepared import PreparedRead

PATH = "keys.backends.ModelBackend"  # as in settings.AUTHENTICATION_BACKENDS and sessions

# With the citizen (a LEFT OUTER JOIN; none for staff): every citizen's page asks for it
# (``citizen_required``), which was a second query of its own.
_USER = PreparedRead(User.objects.select_related("citizen"), "pk")


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        if user_id is None:
            return None
        try:
            user = _USER.get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
