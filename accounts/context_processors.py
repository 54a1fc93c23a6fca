from accounts.roles import Role, role_of


def roles(request):
    """Expose the user's role to templates (navigation differs per role)."""
    role = role_of(getattr(request, "user", None))
    return {
        "user_role": role,
        "is_manager": role in (Role.MANAGER, Role.ADMIN),
        "is_admin": role == Role.ADMIN,
    }


def navigation(request):
    """Which part of the app the page belongs to, for the top bar; empty on pages no URL matched (a 404)."""
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    return {"nav_section": (match.namespace or url_name) if match else "", "nav_url_name": url_name}
