from django.db import migrations

REASONS = [
    ("price", "Price too high"),
    ("no_budget", "No budget this period"),
    ("no_need", "No real need"),
    ("timing", "Bad timing"),
    ("competitor", "Chose a competitor"),
    ("missing_feature", "Missing feature"),
    ("no_decision", "No decision maker reached"),
    ("other", "Other"),
]


def install(apps, schema_editor):
    LostReason = apps.get_model("opportunities", "LostReason")
    for order, (key, label) in enumerate(REASONS, start=1):
        LostReason.objects.get_or_create(key=key, defaults={"label": label, "display_order": order})


class Migration(migrations.Migration):
    dependencies = [("opportunities", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
