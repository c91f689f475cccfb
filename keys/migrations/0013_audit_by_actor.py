# What a staff member did, newest first (the audit list searched by a clerk's username, issue
# 11 §4), PostgreSQL only: the newest 50 of a clerk's tens of thousands of events straight from
# the index instead of all of them sorted. Built CONCURRENTLY: the audit trail stays writable.

from django.db import migrations

NAME = "auditevent_actor_newest"
DEFINITION = "ON keys_auditevent (actor_id, created_at DESC, id DESC)"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} {DEFINITION}")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("keys", "0012_funnel_indexes"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
