"""The three roles of the product, held as auth groups (created by a data migration)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CSM = "CSM"
    MANAGER = "Manager"
    ADMIN = "Admin"


# Highest first: a user in several groups acts with the widest role.
_PRECEDENCE = (Role.ADMIN, Role.MANAGER, Role.CSM)


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
