"""The helpdesk's permissions for the two staff groups of ``keys/migrations/0002_staff_groups``.

Helpdesk: the citizen pages, blocking a key, lifting a sign-in lockout, the funnel.
Registration office: the funnel (of their own office; the scoping is in helpdesk/views.py).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Helpdesk": ["use_helpdesk", "block_digitalkey", "unlock_signin", "view_funnel"],
    "Registration office": ["view_funnel"],
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("helpdesk")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(
            content_type__app_label="helpdesk", codename__in=codenames
        )
        assert permissions.count() == len(codenames), (name, codenames)
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        for group in Group.objects.filter(name=name):
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="helpdesk", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0001_initial"),
        ("keys", "0002_staff_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
