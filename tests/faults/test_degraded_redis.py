"""With Redis unreachable, the cache degrades to misses and ingestion still stores, logging the refresh it
could not enqueue. (test_redis_down.py shows the same on a running stack; these pin the two pieces.)"""

import logging

import pytest
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts import tasks
from accounts.models import UsageSnapshot
from accounts.tokens import api_token_create
from tests.api_helpers import post_json
from upsell_crm import cache as degrading
from upsell_crm.cache import DegradingRedisCache

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def unreachable_cache(monkeypatch) -> DegradingRedisCache:
    monkeypatch.setattr(degrading, "_warned_at", -float(degrading.WARN_EVERY_SECONDS))
    return DegradingRedisCache(UNREACHABLE_REDIS, {"OPTIONS": {"socket_connect_timeout": 1}})


def test_it_reads_misses_and_drops_writes_while_redis_cannot_be_reached(unreachable_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="upsell_crm.cache"):
        unreachable_cache.set("choices", ["EMEA"], 60)
        assert unreachable_cache.get("choices", "fallback") == "fallback"
        assert unreachable_cache.get_many(["choices"]) == {}
        assert unreachable_cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert not unreachable_cache.has_key("choices")

    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["Cache unavailable, set skipped"]


def test_it_still_raises_on_add_so_the_pipeline_lock_never_pretends_to_be_taken(unreachable_cache):
    with pytest.raises(RedisConnectionError):
        unreachable_cache.add("upsell:pipeline-lock", "token", 60)


def test_it_stores_usage_and_logs_the_refresh_it_could_not_enqueue(
    client, account, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(**kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.refresh_indicators, "delay", broker_down)
    body = {"snapshots": [{"account": account.external_id, "metric": "seats", "value": 4, "date": "2026-11-01"}]}

    with caplog.at_level(logging.WARNING, logger="accounts.tasks"), django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, "/api/v1/usage", body, token=api_token_create(name="exporter")[1])

    assert response.status_code == 200
    assert UsageSnapshot.objects.filter(account=account, value=4).exists()
    assert "The refresh of 1 accounts could not be enqueued" in caplog.text


def test_it_keeps_one_redis_client_per_server_instead_of_building_one_per_call(unreachable_cache):
    # Building a redis-py client was half the cost of a cache read; the client holds no connection itself.
    clients = {id(unreachable_cache._cache.get_client(key)) for key in ("a", "b", "c")}
    clients.add(id(unreachable_cache._cache.get_client("a", write=True)))
    assert len(clients) == 1
