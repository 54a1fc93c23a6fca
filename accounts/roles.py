"""The three roles of the product, held as auth groups (created by a data migration)."""

from __future__ import annotations

from enum import StrEnum

from accounts import reference


class Role(StrEnum):
    CSM = "CSM"
    MANAGER = "Manager"
    ADMIN = "Admin"
    # An account executive brought onto an opportunity by its CSM; works only what they collaborate on.
    SALES = "Sales"


# Highest first: a user in several groups acts with the widest role.
_PRECEDENCE = (Role.ADMIN, Role.MANAGER, Role.CSM, Role.SALES)


def _widest(names: set[str]) -> Role | None:
    return next((role for role in _PRECEDENCE if role.value in names), None)


def _roles_by_user() -> dict[int, Role]:
    """The role of every user in a role group, by user id: one query over the group memberships."""
    from django.contrib.auth import get_user_model

    names: dict[int, set[str]] = {}
    for user_id, name in get_user_model().groups.through.objects.values_list("user_id", "group__name"):
        names.setdefault(user_id, set()).add(name)
    return {user_id: role for user_id, held in names.items() if (role := _widest(held)) is not None}


def role_of(user) -> Role | None:
    """The user's role, cached on the user object for the request; superusers are admins.

    Every page asks for it, so the roles come from the reference data (accounts.reference), which a change
    of anyone's groups renews: at once in the process that made it, within a second in the others.
    """
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(user, "_upsell_role", False)
    if cached is not False:
        return cached
    role = Role.ADMIN if user.is_superuser else reference.cached("roles-by-user", _roles_by_user).get(user.pk)
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
