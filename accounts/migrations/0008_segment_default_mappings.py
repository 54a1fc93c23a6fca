from django.db import migrations

# Segment's B2B SaaS spec names the login event "Signed In"; other track events are the customer's own and
# are mapped by an admin.
DEFAULT_MAPPINGS = [("Signed In", "login", "")]


def add_mappings(apps, schema_editor):
    SegmentEventMapping = apps.get_model("accounts", "SegmentEventMapping")
    for event_name, kind, feature in DEFAULT_MAPPINGS:
        if not SegmentEventMapping.objects.filter(event_name__iexact=event_name).exists():
            SegmentEventMapping.objects.create(event_name=event_name, kind=kind, feature=feature)


def remove_mappings(apps, schema_editor):
    SegmentEventMapping = apps.get_model("accounts", "SegmentEventMapping")
    SegmentEventMapping.objects.filter(event_name__in=[name for name, _, _ in DEFAULT_MAPPINGS]).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_ingest_api")]

    operations = [migrations.RunPython(add_mappings, remove_mappings)]
