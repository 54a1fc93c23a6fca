"""The three roles of the product, held as auth groups (created by a data migration)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CSM = "CSM"
    MANAGER = "Manager"
    ADMIN = "Admin"
    # An account executive brought onto an opportunity by its CSM; works only what they collaborate on.
    SALES = "Sales"


# Highest first: a user in several groups acts with the widest role.
_PRECEDENCE = (Role.ADMIN, Role.MANAGER, Role.CSM, Role.SALES)


def role_of(user) -> Role | None:
    """The user's role, cached on the user object for the request; superusers are admins."""
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(user, "_upsell_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in _PRECEDENCE if r.value in names), None)
    user._upsell_role = role
    return role


def is_manager_or_admin(user) -> bool:
    return role_of(user) in (Role.MANAGER, Role.ADMIN)


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


DOMAIN_APPS = ("accounts", "playbooks", "opportunities")
MANAGER_PERMISSIONS = (
    ("accounts", "view_account"),
    ("accounts", "change_account"),
    ("opportunities", "view_opportunity"),
    ("opportunities", "change_opportunity"),
)


def roles_grant_permissions(**kwargs) -> None:
    """Give the role groups their model permissions, including those of models added after the groups.

    Connected to post_migrate: permissions of new models only exist once their app has migrated, so a
    data migration alone would leave admins without access to every later model.
    """
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    groups = {g.name: g for g in Group.objects.filter(name__in=[Role.ADMIN, Role.MANAGER])}
    if Role.ADMIN in groups:
        groups[Role.ADMIN].permissions.add(
            *Permission.objects.filter(content_type__app_label__in=DOMAIN_APPS).values_list("pk", flat=True)
        )
    if Role.MANAGER in groups:
        wanted = Q(pk__in=[])
        for app_label, codename in MANAGER_PERMISSIONS:
            wanted |= Q(content_type__app_label=app_label, codename=codename)
        groups[Role.MANAGER].permissions.add(*Permission.objects.filter(wanted).values_list("pk", flat=True))
