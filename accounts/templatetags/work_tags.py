"""The top bar's notification bell."""

from django import template

from accounts.work_selectors import unread_count_cached

register = template.Library()


@register.inclusion_tag("work/bell.html", takes_context=True)
def notification_bell(context) -> dict:
    """The bell with the signed-in user's unread count as the cache holds it: no query while a page is
    drawn. When the cache has none, the bell asks for it with htmx once the page has loaded (one COUNT over
    the recipient's index, cached for the pages after; see accounts.work_selectors.unread_count)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread": 0, "unread_known": True}
    cached = unread_count_cached(user=user)
    return {"unread": cached or 0, "unread_known": cached is not None}
