# The activation funnel at a million activations (issue 11 §4), PostgreSQL only.
#
# helpdesk.selectors.funnel groups the activations issued in a period by office and week:
# a covering index lets PostgreSQL read them from the index alone (no visit to the table's
# rows), and the "account made" events of the activations that did not complete are found
# through a small partial index. Built CONCURRENTLY (a non-atomic migration): the tables stay
# writable meanwhile. SQLite needs neither.

from django.db import migrations

POSTGRES_INDEXES = {
    "activation_funnel": (
        "ON keys_activation (created_at) INCLUDE "
        "(id, office_id, state, expires_at, opened_at, code_verified_at, completed_at)"
    ),
    "auditevent_account_made": (
        "ON keys_auditevent (activation_id) "
        "WHERE action IN ('account_created', 'password_reset')"
    ),
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in POSTGRES_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in POSTGRES_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("keys", "0011_search_at_scale"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
