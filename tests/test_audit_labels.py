"""AuditEvent.get_action_display (keys/models.py) gives what Django's generated method gives,
for every action (the app's and the kinds'), in every language, from a table built once."""

import pytest
from django.utils import translation

from keys.models import AuditEvent, audit_action_choices


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_every_action_has_djangos_label(language):
    field = AuditEvent._meta.get_field("action")
    actions = [value for value, _label in audit_action_choices()]
    assert len(actions) > 30
    with translation.override(language):
        for action in [*actions, "not-an-action"]:
            event = AuditEvent(action=action)
            assert event.get_action_display() == event._get_FIELD_display(field)
            assert isinstance(event.get_action_display(), str)


def test_the_label_follows_the_active_language():
    event = AuditEvent(action=AuditEvent.Action.LINK_OPENED)
    with translation.override("nl"):
        dutch = event.get_action_display()
    with translation.override("fr"):
        french = event.get_action_display()
    assert dutch != french
