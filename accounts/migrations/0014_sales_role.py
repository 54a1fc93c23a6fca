"""The Sales role: account executives a CSM brings onto an opportunity. No admin permissions."""

from django.db import migrations


def create_sales(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="Sales")


def remove_sales(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Sales").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0013_contacts_tasks_notifications")]

    operations = [migrations.RunPython(create_sales, remove_sales)]
