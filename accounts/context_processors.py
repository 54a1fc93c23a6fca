from accounts.roles import Role, role_of


def roles(request):
    """Expose the user's role to templates (navigation differs per role)."""
    role = role_of(getattr(request, "user", None))
    return {
        "user_role": role,
        "is_manager": role in (Role.MANAGER, Role.ADMIN),
        "is_admin": role == Role.ADMIN,
    }
