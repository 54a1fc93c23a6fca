"""The notification centre, the bell in the top bar, and the notification settings page."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification, NotificationSetting
from accounts.work_services import notify
from tests.caches import empty_caches

LIST_URL = reverse("notifications:list")
SETTINGS_URL = reverse("notifications:settings")
HTMX = {"HX-Request": "true"}
NEW = Notification.Kind.NEW_CANDIDATE


def told(user, title="New candidate: Acme", *, minutes_ago=0, **kwargs) -> Notification:
    return notify(
        recipient=user, kind=NEW, title=title, at=timezone.now() - dt.timedelta(minutes=minutes_ago), **kwargs
    )


def listed(response) -> list[str]:
    return [item.title for item in response.context["page"]]


def test_it_lists_my_notifications_newest_first_and_not_anyone_elses(csm_client, csm, other_csm):
    told(csm, "Older", minutes_ago=30)
    told(csm, "Newer", minutes_ago=1)
    told(other_csm, "Olive's")

    response = csm_client.get(LIST_URL)

    assert response.status_code == 200
    assert listed(response) == ["Newer", "Older"]


def test_it_highlights_the_unread_ones_and_links_to_the_target(csm_client, csm, account):
    unread = told(csm, "Unread one", url=f"/accounts/{account.pk}/", account=account)
    read = told(csm, "Read one")
    Notification.objects.filter(pk=read.pk).update(read_at=timezone.now())

    html = csm_client.get(LIST_URL).content.decode()

    assert f'<tr id="notification-{unread.pk}" class="notification-row notification-row--unread">' in html
    assert f'<tr id="notification-{read.pk}" class="notification-row">' in html
    assert f'<a href="/accounts/{account.pk}/" data-read-url="/notifications/{unread.pk}/read/">Unread one</a>' in html


def test_it_shows_only_the_unread_ones_when_asked(csm_client, csm):
    told(csm, "Unread one")
    Notification.objects.filter(pk=told(csm, "Read one").pk).update(read_at=timezone.now())

    assert listed(csm_client.get(LIST_URL, {"unread": "1"})) == ["Unread one"]


def test_it_says_so_when_there_is_nothing(csm_client):
    assert "No notifications yet" in csm_client.get(LIST_URL).content.decode()


def _list_queries(client) -> int:
    empty_caches()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST_URL).status_code == 200
    return len(queries)


def test_it_runs_as_many_queries_for_50_notifications_as_for_5(csm_client, csm, account):
    for index in range(5):
        told(csm, f"N{index}", account=account)
    few = _list_queries(csm_client)
    for index in range(45):
        told(csm, f"M{index}", account=account)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("accounts.work_views.NOTIFICATIONS_PER_PAGE", 50)
        assert _list_queries(csm_client) == few


def test_it_stays_within_its_query_budget(csm_client, csm, django_assert_max_num_queries):
    told(csm)
    # Session, user, role; the unread count; the page's count and rows.
    with django_assert_max_num_queries(6):
        csm_client.get(LIST_URL)


# --- Marking read ----------------------------------------------------------------------------------------------


def read_url(notification) -> str:
    return reverse("notifications:read", args=[notification.pk])


def test_it_marks_one_read_with_htmx_and_updates_the_bell(csm_client, csm):
    notification = told(csm)
    told(csm, "Another")

    response = csm_client.post(read_url(notification), headers=HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="notification-{notification.pk}" class="notification-row">')
    assert '<span id="bell-count" class="bell__count" hx-swap-oob="true">1<' in html
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_it_keeps_the_first_time_a_notification_was_read(csm_client, csm):
    notification = told(csm)
    first = timezone.now() - dt.timedelta(days=1)
    Notification.objects.filter(pk=notification.pk).update(read_at=first)

    csm_client.post(read_url(notification))

    notification.refresh_from_db()
    assert notification.read_at == first


@pytest.mark.parametrize("persona", ["other_csm", "manager", "admin_user"])
def test_it_hides_someone_elses_notification_whoever_asks(db, client, csm, persona, request):
    notification = told(csm)
    client.force_login(request.getfixturevalue(persona))

    response = client.post(read_url(notification), headers=HTMX)

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_it_marks_all_mine_read_and_no_one_elses(csm_client, csm, other_csm):
    told(csm, "One")
    told(csm, "Two")
    olives = told(other_csm)

    response = csm_client.post(reverse("notifications:read_all"))

    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert not Notification.objects.filter(recipient=csm, read_at__isnull=True).exists()
    olives.refresh_from_db()
    assert olives.read_at is None


# --- The bell ------------------------------------------------------------------------------------------------------


def test_it_asks_for_the_count_once_the_page_has_loaded_when_the_cache_has_none(csm_client, csm):
    told(csm)

    html = csm_client.get(reverse("home")).content.decode()

    assert 'id="bell-count"' in html and 'hx-trigger="load"' in html


def test_it_counts_the_unread_ones_for_the_bell_and_keeps_the_count(csm_client, csm, other_csm):
    told(csm, "One")
    told(csm, "Two")
    told(other_csm)

    response = csm_client.get(LIST_URL, headers={**HTMX, "HX-Target": "bell-count"})

    assert response.content.decode().startswith('<span id="bell-count" class="bell__count">2<')
    with CaptureQueriesContext(connection) as queries:
        html = csm_client.get(reverse("home")).content.decode()
    assert '<span id="bell-count" class="bell__count">2<' in html
    assert not any("accounts_notification" in q["sql"] for q in queries.captured_queries)


def test_it_forgets_the_kept_count_when_a_notification_arrives_or_is_read(csm_client, csm):
    csm_client.get(LIST_URL, headers={**HTMX, "HX-Target": "bell-count"})
    notification = told(csm)

    assert 'hx-trigger="load"' in csm_client.get(reverse("home")).content.decode()
    csm_client.get(LIST_URL, headers={**HTMX, "HX-Target": "bell-count"})
    csm_client.post(read_url(notification))
    assert 'hx-trigger="load"' in csm_client.get(reverse("home")).content.decode()


def test_it_opens_the_bell_with_the_latest_few(csm_client, csm):
    for index in range(8):
        told(csm, f"N{index}", minutes_ago=index)

    response = csm_client.get(LIST_URL, headers={**HTMX, "HX-Target": "bell-panel"})

    html = response.content.decode()
    assert "N0" in html and "N5" in html and "N6" not in html
    assert 'href="/notifications/settings/"' in html and "<html" not in html
    assert "HX-Request" in response["Vary"]


# --- Settings --------------------------------------------------------------------------------------------------


def test_it_shows_the_defaults_before_the_first_save_without_storing_them(csm_client):
    response = csm_client.get(SETTINGS_URL)

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.initial["kinds"]) >= {NEW, Notification.Kind.TASK_DUE} and form.initial["daily_digest"] is True
    assert not NotificationSetting.objects.exists()


def test_it_offers_experiment_verdicts_to_admins_only(csm_client, client, admin_user):
    assert "Experiment reached significance" not in csm_client.get(SETTINGS_URL).content.decode()
    client.force_login(admin_user)
    assert "Experiment reached significance" in client.get(SETTINGS_URL).content.decode()


def test_it_saves_the_kinds_left_unticked_as_muted_and_the_digest_choice(csm_client, csm):
    wanted = [kind for kind in Notification.Kind.values if kind not in (NEW, "experiment_significant")]

    response = csm_client.post(SETTINGS_URL, {"kinds": wanted})

    assert response.status_code == 302 and response["Location"] == SETTINGS_URL
    setting = NotificationSetting.objects.get(user=csm)
    assert (setting.muted_kinds, setting.daily_digest) == ([NEW], False)
    assert told(csm) is None


def test_it_refuses_an_unknown_kind_naming_the_field_and_changes_nothing(csm_client):
    response = csm_client.post(SETTINGS_URL, {"kinds": ["new_candidate", "gossip"], "daily_digest": "on"})

    assert response.status_code == 422
    assert "kinds" in response.context["form"].errors
    assert "Select a valid choice" in response.content.decode()
    assert not NotificationSetting.objects.exists()


def test_it_keeps_an_admin_only_kind_a_user_muted_while_they_were_admin(csm_client, csm):
    NotificationSetting.objects.create(user=csm, muted_kinds=["experiment_significant", NEW])

    csm_client.post(SETTINGS_URL, {"kinds": [NEW], "daily_digest": "on"})

    setting = NotificationSetting.objects.get(user=csm)
    assert "experiment_significant" in setting.muted_kinds and NEW not in setting.muted_kinds
    assert setting.daily_digest is True
