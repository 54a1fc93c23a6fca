"""Create the three role groups with the model permissions each role needs in the Django admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "CSM": [],
    "Manager": [
        ("accounts", "view_account"),
        ("accounts", "change_account"),
        ("opportunities", "view_opportunity"),
        ("opportunities", "change_opportunity"),
    ],
    "Admin": "all",
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    our_apps = ["accounts", "playbooks", "opportunities"]
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        if perms == "all":
            group.permissions.set(Permission.objects.filter(content_type__app_label__in=our_apps))
        else:
            group.permissions.set(
                Permission.objects.filter(
                    content_type__app_label__in=[a for a, _ in perms], codename__in=[c for _, c in perms]
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_catalogue"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("playbooks", "0001_initial"),
        ("opportunities", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
