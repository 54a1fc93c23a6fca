"""Reference data: rows that nearly every page reads and admins change a few times a month.

Examples are the plan catalogue, the lost reasons, the plays a CSM may start, and who holds which role.
Each is read from the database once and then served from the cache until a write to one of the watched
tables moves the generation on. One generation covers all of them, so a write to any watched table makes
every reader fetch fresh rows.

The account page used to spend a third of its queries on these lists, and each query cost more in the ORM
than in PostgreSQL.

Readers:  `cached("active-plans", lambda: list(Plan.objects.active()))`, a list of rows, never a queryset.
Writers:  nothing to do. Each app's ready() passes its reference models to `watch`, so any save or delete
          through the ORM (the admin and the settings pages included) moves the generation on after commit.
          Code that writes these tables with `QuerySet.update()` or `bulk_create()` sends no signal; it must
          call `invalidate()` itself (seed_demo does, and so does every migration run).

Each process keeps the values it read in memory as well, and asks the cache for the generation at most once
every GENERATION_RECHECK seconds, so a page that reads five lists asks Redis once, not ten times. Values
expire after REFERENCE_TTL. Without a reachable cache every call reads the database, as it did before this
module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

GENERATION_KEY = "reference:generation"
REFERENCE_TTL = 60 * 60
# How long a process trusts the generation it last read before it asks the cache again. A write in another
# worker reaches this one within that time; one in this worker, at once.
GENERATION_RECHECK = 1.0
UNCACHED = "uncached"


class _Local:
    """This process's copy: the generation it last read, when, and the values read under it."""

    generation: str | None = None
    checked_at: float = float("-inf")
    values: dict[str, tuple[float, object]] = {}


def _generation() -> str:
    now = time.monotonic()
    if _Local.generation is not None and now - _Local.checked_at < GENERATION_RECHECK:
        return _Local.generation
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        # set, not add: add is one of the calls that still raise while Redis is down (upsell_crm/cache.py).
        # Two processes starting a generation at once only cost one of them a second read.
        cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        generation = cache.get(GENERATION_KEY) or UNCACHED
    if generation != _Local.generation:
        _Local.values = {}
    _Local.generation, _Local.checked_at = generation, now
    return generation


def generation() -> str:
    """The reference data's current generation: part of the key of anything cached that shows it."""
    return _generation()


def cached[T](name: str, read: Callable[[], T]) -> T:
    """`read()`'s value, served from memory or the cache as long as no watched table has changed since it was
    read. Callers share the value and must not change it."""
    generation = _generation()
    if generation == UNCACHED:  # no cache to hear of writes from other processes: read every time
        return read()
    now = time.monotonic()
    held = _Local.values.get(name)
    if held is not None and now - held[0] < REFERENCE_TTL:
        return held[1]
    key = f"reference:{generation}:{name}"
    value = cache.get(key)
    if value is None:
        value = read()
        cache.set(key, value, REFERENCE_TTL)
    _Local.values[name] = (now, value)
    return value


def forget() -> None:
    """Drop this process's copy (the tests do, between tests, as they empty the cache)."""
    _Local.generation, _Local.checked_at, _Local.values = None, float("-inf"), {}


def _move_on() -> None:
    generation = uuid.uuid4().hex
    cache.set(GENERATION_KEY, generation, timeout=None)
    _Local.generation, _Local.checked_at, _Local.values = generation, time.monotonic(), {}


def invalidate(**_) -> None:
    """Move the generation on now, and again once the current transaction commits.

    The writing transaction itself reads its own writes at once. Until it commits, another reader can still
    cache the old rows under the new generation, so the second move, after the commit, drops those.
    """
    _move_on()
    transaction.on_commit(_move_on, robust=True)


def watch(*models: type[Model], m2m: tuple = ()) -> None:
    """Invalidate on every save and delete of `models`, and on every change to the `m2m` through tables."""
    for model in models:
        uid = f"reference:{model._meta.label}"
        post_save.connect(invalidate, sender=model, dispatch_uid=f"{uid}:save", weak=False)
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"{uid}:delete", weak=False)
    for through in m2m:
        m2m_changed.connect(invalidate, sender=through, dispatch_uid=f"reference:{through._meta.label}", weak=False)
