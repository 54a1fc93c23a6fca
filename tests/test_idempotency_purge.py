"""The daily task that forgets idempotency keys once they can no longer be replayed."""

import datetime as dt

from django.utils import timezone

from accounts.models import IdempotencyKey
from accounts.tasks import purge_idempotency_keys
from accounts.tokens import api_token_create


def key(token, name, age):
    return IdempotencyKey.objects.create(
        token=token,
        key=name,
        fingerprint="f" * 64,
        status_code=200,
        content_type="application/json",
        response_body=b"{}",
        created_at=timezone.now() - age,
    )


def test_it_purges_keys_older_than_a_day_and_keeps_fresh_ones(db, eager_celery):
    token, _ = api_token_create(name="exporter")
    key(token, "old", dt.timedelta(hours=25))
    key(token, "fresh", dt.timedelta(hours=1))

    purge_idempotency_keys.delay()

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
