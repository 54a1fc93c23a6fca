"""Reference data (accounts/reference.py): read once, served from the cache, read again after any write."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse

from accounts import reference
from accounts.models import Metric
from accounts.roles import Role, role_of
from accounts.selectors import active_plans, csm_choices, limit_metrics
from opportunities.collaboration import sales_users
from opportunities.models import LostReason, Stage
from opportunities.selectors import active_lost_reasons
from tests.factories import OpportunityFactory, UserFactory, plan

pytestmark = pytest.mark.django_db


def test_it_reads_the_limit_metrics_once_then_serves_them_from_the_cache(django_assert_num_queries):
    with django_assert_num_queries(1):
        first = limit_metrics()
    with django_assert_num_queries(0):
        again = limit_metrics()

    assert [m.key for m in again] == [m.key for m in first] != []


def test_a_saved_metric_is_read_again(django_assert_num_queries):
    limit_metrics()
    seats = Metric.objects.get(key="seats")
    seats.label = "Licensed users"
    seats.save()

    with django_assert_num_queries(1):
        labels = [m.label for m in limit_metrics()]

    assert "Licensed users" in labels


def test_a_deleted_lost_reason_leaves_the_choices():
    reason = active_lost_reasons()[0]

    LostReason.objects.filter(pk=reason.pk).get().delete()

    assert reason.pk not in [r.pk for r in active_lost_reasons()]


def test_a_plan_taken_off_sale_leaves_the_plan_menus():
    pro = plan("Pro")
    assert pro in active_plans()

    pro.active = False
    pro.save()

    assert pro not in active_plans()


def test_joining_a_group_changes_who_may_be_chosen(csm):
    newcomer = UserFactory(username="sam", first_name="Sam", last_name="Lee")
    assert newcomer not in csm_choices() and newcomer not in sales_users()

    newcomer.groups.add(Group.objects.get(name=Role.SALES))

    assert newcomer in sales_users() and newcomer not in csm_choices()


def test_a_write_moves_the_generation_on_again_once_its_transaction_commits(django_capture_on_commit_callbacks):
    """A reader between the write and the commit caches the old rows; the second move drops them."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        limit_metrics()
        Metric.objects.filter(key="seats").get().save()
        during = reference._generation()

    assert len(callbacks) == 1
    assert reference._generation() != during


def test_the_panels_menus_show_a_renamed_plan_and_reason_at_once(csm_client, account):
    OpportunityFactory(account=account, stage=Stage.CLOSE, target_plan=plan("Pro"))
    csm_client.get(account.get_absolute_url())  # the menus are cached now
    pro = plan("Pro")
    pro.name = "Pro 2027"
    pro.save()
    reason = LostReason.objects.filter(active=True).first()
    reason.label = "Chose a cheaper tool"
    reason.save()

    html = csm_client.get(account.get_absolute_url()).content.decode()

    assert re.search(rf'<option value="{pro.pk}"( selected)?>Pro 2027</option>', html)
    assert f'<option value="{reason.pk}">Chose a cheaper tool</option>' in html


def test_without_a_cache_every_call_reads_the_database(settings, django_assert_num_queries):
    """Nothing would tell this process of another one's writes, so it keeps nothing in memory either."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    with django_assert_num_queries(2):
        limit_metrics()
        limit_metrics()


def test_a_write_in_another_process_reaches_this_one_within_the_recheck(monkeypatch, django_assert_num_queries):
    clock = [1000.0]
    monkeypatch.setattr(reference.time, "monotonic", lambda: clock[0])
    limit_metrics()
    # Another worker saves a metric: the shared cache moves on, this process's memory does not hear of it.
    cache.set(reference.GENERATION_KEY, "moved-on-elsewhere", timeout=None)

    with django_assert_num_queries(0):
        limit_metrics()
    clock[0] += reference.GENERATION_RECHECK
    with django_assert_num_queries(1):
        limit_metrics()


def test_a_page_reading_every_list_asks_the_cache_once(csm_client, account, monkeypatch):
    OpportunityFactory(account=account, stage=Stage.CLOSE, target_plan=plan("Pro"))
    csm_client.get(account.get_absolute_url())
    asked = []
    real_get = cache.get
    later = reference.time.monotonic() + reference.GENERATION_RECHECK
    monkeypatch.setattr(reference.time, "monotonic", lambda: later)
    monkeypatch.setattr(reference.cache, "get", lambda key, *a, **kw: asked.append(key) or real_get(key, *a, **kw))

    csm_client.get(account.get_absolute_url())

    assert [key for key in asked if key.startswith("reference:")] == [reference.GENERATION_KEY]


def test_the_close_form_still_refuses_a_plan_off_sale(csm_client, account):
    """The options come from the cache; a submitted value is still checked against the database."""
    opportunity = OpportunityFactory(account=account, stage=Stage.CLOSE, target_plan=plan("Pro"))
    active_plans()
    pro = plan("Pro")
    type(pro).objects.filter(pk=pro.pk).update(active=False)  # no signal: the cached menu still offers Pro

    response = csm_client.post(
        reverse("opportunities:close", args=[opportunity.pk]),
        {"version": opportunity.version, "outcome": "won", "plan": pro.pk, "mrr_delta": "50"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 422
    opportunity.refresh_from_db()
    assert opportunity.outcome == "open"


def test_it_never_asks_the_cache_for_a_call_that_raises_while_redis_is_down(monkeypatch):
    """add (like incr and delete) still raises without Redis (upsell_crm/cache.py); pages must not."""

    def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(reference.cache, "add", unreachable)

    assert [m.key for m in limit_metrics()] != []


def test_a_change_of_groups_changes_the_role_on_the_next_request(client, csm):
    # Roles are reference data: read once, renewed by any change of anyone's groups.
    pipeline = reverse("pipeline:page")
    client.force_login(csm)
    assert client.get(pipeline).status_code == 403

    csm.groups.add(Group.objects.get(name=Role.MANAGER))
    assert client.get(pipeline).status_code == 200

    Group.objects.get(name=Role.MANAGER).user_set.remove(csm)
    assert client.get(pipeline).status_code == 403


def test_it_reads_everyone_s_role_in_one_query_then_none(csm, manager, admin_user, django_assert_num_queries):
    # Fresh user objects: the role is also kept on the object it was asked for.
    users = [get_user_model().objects.get(pk=user.pk) for user in (csm, manager, admin_user)]
    with django_assert_num_queries(1):
        roles = [role_of(user) for user in users]
    assert roles == [Role.CSM, Role.MANAGER, Role.ADMIN]
    with django_assert_num_queries(0):
        assert role_of(get_user_model()(pk=csm.pk)) == Role.CSM


def test_deleting_a_role_s_group_takes_the_role_away(client, manager):
    pipeline = reverse("pipeline:page")
    client.force_login(manager)
    assert client.get(pipeline).status_code == 200

    Group.objects.filter(name=Role.MANAGER).delete()

    assert client.get(pipeline).status_code == 403


def test_the_account_page_names_a_renamed_plan_at_once_and_keeps_its_own_copy(csm_client, account):
    opportunity = OpportunityFactory(account=account, target_plan=plan("Pro"))
    csm_client.get(account.get_absolute_url())  # the plan catalogue is cached now
    pro = plan("Pro")
    pro.name = "Pro 2027"
    pro.save()

    response = csm_client.get(account.get_absolute_url())

    [shown] = response.context["opportunities"]
    assert shown.pk == opportunity.pk and shown.target_plan.name == "Pro 2027"
    assert "Pro 2027" in response.content.decode()
    shown.target_plan.name = "Changed by one request"
    assert csm_client.get(account.get_absolute_url()).context["opportunities"][0].target_plan.name == "Pro 2027"
