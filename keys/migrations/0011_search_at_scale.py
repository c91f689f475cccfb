# The helpdesk's search and the admin lists at a million citizens (issue 11 §4).
#
# Non-atomic so that PostgreSQL builds its indexes CONCURRENTLY: registrations keep working
# while a big table is indexed. SQLite gets the stored column and the plain indexes only.

from django.db import migrations, models

from keys.search import search_name

# PostgreSQL only: partial, accent- and case-insensitive names through pg_trgm (the stored,
# folded search_name: unaccent() is not IMMUTABLE, so it cannot be indexed itself), and e-mail
# addresses by case-insensitive prefix (the expression of Django's istartswith/iexact).
POSTGRES_INDEXES = {
    "citizen_search_name_trgm": (
        "ON keys_citizen USING gin (search_name gin_trgm_ops)"
    ),
    "citizen_email_upper": (
        "ON keys_citizen (UPPER(email::text) text_pattern_ops)"
    ),
}


def fill_search_name(apps, schema_editor):
    Citizen = apps.get_model("keys", "Citizen")
    batch = []
    for citizen in Citizen.objects.only("first_name", "last_name").iterator(chunk_size=2000):
        citizen.search_name = search_name(citizen.first_name, citizen.last_name)
        batch.append(citizen)
        if len(batch) == 2000:
            Citizen.objects.bulk_update(batch, ["search_name"])
            batch = []
    if batch:
        Citizen.objects.bulk_update(batch, ["search_name"])


def create_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in POSTGRES_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")


def drop_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in POSTGRES_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("keys", "0010_helpdesk_actions"),
    ]

    operations = [
        migrations.AddField(
            model_name="citizen",
            name="search_name",
            field=models.CharField(blank=True, default="", editable=False, max_length=301),
        ),
        migrations.RunPython(fill_search_name, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="citizen",
            index=models.Index(
                fields=["last_name", "first_name", "-id"], name="citizen_list_order"
            ),
        ),
        migrations.AddIndex(
            model_name="activation",
            index=models.Index(fields=["-created_at", "-id"], name="activation_newest_first"),
        ),
        migrations.AddIndex(
            model_name="activation",
            index=models.Index(
                fields=["citizen", "-created_at"], name="activation_citizen_latest"
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["-created_at", "-id"], name="auditevent_newest_first"),
        ),
        migrations.RunPython(create_postgres_indexes, drop_postgres_indexes),
    ]
