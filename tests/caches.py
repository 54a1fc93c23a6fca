"""Every cache the app reads through, emptied: the shared one and each process-local copy in front of it."""

from django.core.cache import cache

from accounts import reference
from accounts.filters import CachedChoices


def empty_caches() -> None:
    cache.clear()
    reference.forget()
    CachedChoices.forget()
