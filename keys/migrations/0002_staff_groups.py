"""The two staff roles, as groups with their permissions.

Registration office: register citizens and issue, reissue, revoke and resend activations, for
the records of their own office (the office scoping lives in keys/admin.py).
Helpdesk: see every office's citizens, activations, digital keys and audit timeline, resend the
activation e-mail and revoke an activation; never change a record or issue a code.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Registration office": [
        "add_citizen",
        "change_citizen",
        "view_citizen",
        "view_activation",
        "issue_activation",
        "revoke_activation",
        "resend_activation_email",
        "view_auditevent",
    ],
    "Helpdesk": [
        "view_citizen",
        "view_activation",
        "view_auditevent",
        "view_digitalkey",
        "view_all_offices",
        "resend_activation_email",
        "revoke_activation",
    ],
}


def create_groups(apps, schema_editor):
    app_config = apps.get_app_config("keys")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(
            content_type__app_label="keys", codename__in=codenames
        )
        assert permissions.count() == len(codenames), (name, codenames)
        group.permissions.set(permissions)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
