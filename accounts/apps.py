from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and usage"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from accounts import reference
        from accounts.models import Metric, Plan, PlanFeature, PlanLimit
        from accounts.roles import roles_grant_permissions

        post_migrate.connect(roles_grant_permissions, dispatch_uid="accounts.roles_grant_permissions")
        # The catalogue and the people in each role are reference data (accounts/reference.py). A migration may
        # have written any of them with update() or raw SQL. Deleting a group takes its memberships with it
        # without a signal of their own.
        user = get_user_model()
        reference.watch(Metric, Plan, PlanLimit, PlanFeature, user, Group, m2m=(user.groups.through,))
        post_migrate.connect(reference.invalidate, dispatch_uid="accounts.reference_invalidate")
