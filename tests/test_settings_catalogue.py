"""Admins keep the catalogue in the app: metrics, Stripe prices, API tokens, lost reasons, and read the audit log."""

import datetime as dt
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, Metric, StripePriceMapping
from accounts.settings_services import config_row_save, metric_save
from accounts.tokens import api_token_authenticate, token_hash
from opportunities.models import LostReason
from tests.factories import UsageSnapshotFactory, UserFactory, metric, plan

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def ada(client, admin_user):
    client.force_login(admin_user)
    return client


def invalid_fields(html: str) -> list[str]:
    return re.findall(r'<(?:input|select|textarea)[^>]*name="([^"]+)"[^>]*aria-invalid="true"', html)


# --- Metrics -----------------------------------------------------------------------------------------------


def metric_data(m: Metric | None = None, **changes) -> dict:
    data = {"key": "", "label": "", "unit": "", "kind": "limit", "display_order": 0, "description": ""}
    if m is not None:
        data.update({name: getattr(m, name) for name in data})
    return {**data, **changes}


def test_an_admin_adds_a_metric_and_the_audit_log_has_it(ada, admin_user):
    response = ada.post(
        reverse("settings:metric_create"), metric_data(key="dashboards", label="Dashboards", unit="dashboards")
    )

    assert response.status_code == 302
    assert response.url == reverse("settings:metrics")
    dashboards = Metric.objects.get(key="dashboards")
    entry = AuditEntry.objects.get()
    assert (entry.object_type, entry.object_id, entry.action, entry.actor) == (
        "accounts.Metric",
        str(dashboards.pk),
        "created",
        admin_user,
    )
    assert entry.after["label"] == "Dashboards"


def test_it_renames_a_metric_and_records_the_label_before_and_after(ada):
    seats = metric("seats")

    response = ada.post(reverse("settings:metric_edit", args=[seats.pk]), metric_data(seats, label="Licensed seats"))

    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.before, entry.after) == ({"label": "Seats"}, {"label": "Licensed seats"})


def test_the_key_of_a_metric_that_snapshots_use_cannot_change(ada, account):
    seats = metric("seats")
    UsageSnapshotFactory(account=account, metric=seats)

    page = ada.get(reverse("settings:metric_edit", args=[seats.pk]))
    response = ada.post(reverse("settings:metric_edit", args=[seats.pk]), metric_data(seats, key="licensed_seats"))

    assert re.search(r'<input[^>]*name="key"[^>]*disabled', page.text)
    assert response.status_code == 302
    assert Metric.objects.filter(key="seats").exists()
    assert not Metric.objects.filter(key="licensed_seats").exists()
    with pytest.raises(ValidationError) as refused:
        metric_save(metric=seats, data={"key": "licensed_seats"}, by=None, at=AT)
    assert "key" in refused.value.message_dict


def test_the_key_of_a_metric_without_snapshots_can_still_change(ada):
    projects = metric("projects")

    response = ada.post(reverse("settings:metric_edit", args=[projects.pk]), metric_data(projects, key="workspaces"))

    assert response.status_code == 302
    assert Metric.objects.get(pk=projects.pk).key == "workspaces"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": "seats", "label": "Seats again"}, "key"),
        ({"key": "not a slug", "label": "X"}, "key"),
        ({"key": "x", "label": ""}, "label"),
        ({"key": "x", "label": "X", "kind": "other"}, "kind"),
        ({"key": "x", "label": "X", "display_order": "-1"}, "display_order"),
    ],
)
def test_it_refuses_a_bad_metric_with_422_naming_the_field_and_stores_nothing(ada, changes, field):
    count = Metric.objects.count()

    response = ada.post(reverse("settings:metric_create"), metric_data(**changes))

    assert response.status_code == 422
    assert invalid_fields(response.text) == [field]
    assert Metric.objects.count() == count
    assert AuditEntry.objects.count() == 0


def test_the_metrics_list_takes_a_fixed_number_of_queries(ada, django_assert_max_num_queries):
    for n in range(10):
        Metric.objects.create(key=f"extra_{n}", label=f"Extra {n}")

    with django_assert_max_num_queries(4):
        response = ada.get(reverse("settings:metrics"))

    assert response.status_code == 200
    assert "extra_9" in response.text


# --- Stripe prices -----------------------------------------------------------------------------------------


def test_an_admin_maps_a_stripe_price_edits_it_and_deletes_it_each_audited(ada):
    create = ada.post(
        reverse("settings:stripe_price_create"), {"price_id": "price_pro_m", "plan": plan("Pro").pk, "description": ""}
    )
    mapping = StripePriceMapping.objects.get()
    edit = ada.post(
        reverse("settings:stripe_price_edit", args=[mapping.pk]),
        {"price_id": "price_pro_m", "plan": plan("Enterprise").pk, "description": "Moved"},
    )
    delete = ada.post(reverse("settings:stripe_price_delete", args=[mapping.pk]))

    assert [create.status_code, edit.status_code, delete.status_code] == [302, 302, 302]
    assert not StripePriceMapping.objects.exists()
    entries = list(AuditEntry.objects.order_by("pk"))
    assert [e.action for e in entries] == ["created", "updated", "deleted"]
    assert entries[1].before == {"description": "", "plan": plan("Pro").pk}
    assert entries[1].after == {"description": "Moved", "plan": plan("Enterprise").pk}
    assert entries[2].before["price_id"] == "price_pro_m"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"price_id": "prod_123", "plan": "1"}, "price_id"),
        ({"price_id": "price_1", "plan": "999"}, "plan"),
        ({"price_id": "", "plan": "1"}, "price_id"),
    ],
)
def test_it_refuses_a_bad_stripe_mapping_with_422_and_stores_nothing(ada, data, field):
    response = ada.post(reverse("settings:stripe_price_create"), data)

    assert response.status_code == 422
    assert invalid_fields(response.text) == [field]
    assert not StripePriceMapping.objects.exists()


def test_a_price_mapped_twice_is_refused(ada):
    StripePriceMapping.objects.create(price_id="price_pro_m", plan=plan("Pro"))

    response = ada.post(reverse("settings:stripe_price_create"), {"price_id": "price_pro_m", "plan": plan("Basic").pk})

    assert response.status_code == 422
    assert "already exists" in response.text
    assert StripePriceMapping.objects.get().plan == plan("Pro")


def test_the_stripe_price_list_takes_a_fixed_number_of_queries(ada, django_assert_max_num_queries):
    for n in range(10):
        StripePriceMapping.objects.create(price_id=f"price_{n}", plan=plan("Pro" if n % 2 else "Basic"))

    with django_assert_max_num_queries(4):
        response = ada.get(reverse("settings:stripe_prices"))

    assert response.text.count("price_") >= 10


# --- API tokens --------------------------------------------------------------------------------------------


def test_a_new_token_shows_once_and_only_its_hash_is_stored(ada, admin_user):
    response = ada.post(reverse("settings:tokens"), {"name": "usage exporter"})

    assert response.status_code == 200
    raw = re.search(r'value="(upc_[^"]+)"', response.text).group(1)
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    assert token.key_hash == token_hash(raw)
    assert api_token_authenticate(raw) == token
    assert raw not in ada.get(reverse("settings:tokens")).text
    entry = AuditEntry.objects.get()
    assert entry.action == "created"
    assert entry.after == {
        "name": "usage exporter",
        "prefix": raw[:12],
        "created_by": admin_user.pk,
        "revoked_at": None,
    }


def test_a_revoked_token_no_longer_opens_the_api_and_the_revocation_is_audited(ada):
    ada.post(reverse("settings:tokens"), {"name": "billing sync"})
    token = ApiToken.objects.get()

    response = ada.post(reverse("settings:token_revoke", args=[token.pk]))
    again = ada.post(reverse("settings:token_revoke", args=[token.pk]))

    assert (response.status_code, again.status_code) == (302, 302)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiToken.objects.active().count() == 0
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == ["created", "updated"]
    assert AuditEntry.objects.last().before == {"revoked_at": None}


def test_a_token_is_revoked_only_by_a_post(ada):
    ada.post(reverse("settings:tokens"), {"name": "billing sync"})
    token = ApiToken.objects.get()

    assert ada.get(reverse("settings:token_revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.is_active


def test_a_token_without_a_name_is_refused_with_422(ada):
    response = ada.post(reverse("settings:tokens"), {"name": "  "})

    assert response.status_code == 422
    assert invalid_fields(response.text) == ["name"]
    assert not ApiToken.objects.exists()


def test_every_post_needs_the_csrf_token(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    response = browser.post(reverse("settings:tokens"), {"name": "no csrf"})

    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_the_token_list_takes_a_fixed_number_of_queries(ada, admin_user, django_assert_max_num_queries):
    for n in range(10):
        ApiToken.objects.create(name=f"t{n}", prefix=f"upc_{n}", key_hash=f"{n:064d}", created_by=admin_user)

    with django_assert_max_num_queries(4):
        response = ada.get(reverse("settings:tokens"))

    assert response.text.count("Revoke t") == 10


# --- Lost reasons ------------------------------------------------------------------------------------------


def ordered_keys() -> list[str]:
    return list(LostReason.objects.order_by("display_order", "pk").values_list("key", flat=True))


def test_an_admin_adds_a_lost_reason_at_the_end_of_the_list(ada):
    response = ada.post(
        reverse("settings:lost_reason_create"), {"key": "security", "label": "Security review", "active": "on"}
    )

    assert response.status_code == 302
    assert ordered_keys()[-1] == "security"
    assert AuditEntry.objects.get().object_type == "opportunities.LostReason"


def test_moving_a_reason_up_swaps_it_with_the_one_above_and_audits_both(ada):
    keys = ordered_keys()
    second = LostReason.objects.get(key=keys[1])

    response = ada.post(reverse("settings:lost_reason_move", args=[second.pk]), {"direction": "up"})

    assert response.status_code == 302
    assert ordered_keys()[:2] == [keys[1], keys[0]]
    assert ordered_keys()[2:] == keys[2:]
    assert AuditEntry.objects.count() == 2


def test_the_first_reason_does_not_move_up(ada):
    first = LostReason.objects.get(key=ordered_keys()[0])

    ada.post(reverse("settings:lost_reason_move", args=[first.pk]), {"direction": "up"})

    assert AuditEntry.objects.count() == 0


def test_a_deactivated_reason_leaves_the_list_csms_pick_from(ada):
    price = LostReason.objects.get(key="price")

    response = ada.post(reverse("settings:lost_reason_set_active", args=[price.pk]), {"active": "0"})

    assert response.status_code == 302
    assert not LostReason.objects.get(key="price").active
    assert AuditEntry.objects.get().after == {"active": False}
    assert "is-inactive" in ada.get(reverse("settings:lost_reasons")).text


@pytest.mark.parametrize(
    ("url_name", "data"),
    [("settings:lost_reason_move", {"direction": "sideways"}), ("settings:lost_reason_set_active", {"active": "x"})],
)
def test_it_refuses_a_nonsense_reorder_or_toggle_with_422(ada, url_name, data):
    price = LostReason.objects.get(key="price")

    response = ada.post(reverse(url_name, args=[price.pk]), data)

    assert response.status_code == 422
    assert AuditEntry.objects.count() == 0


def test_a_reason_key_used_twice_is_refused(ada):
    response = ada.post(reverse("settings:lost_reason_create"), {"key": "price", "label": "Pricing"})

    assert response.status_code == 422
    assert invalid_fields(response.text) == ["key"]


def test_the_lost_reasons_list_takes_a_fixed_number_of_queries(ada, django_assert_max_num_queries):
    for n in range(10):
        LostReason.objects.create(key=f"extra_{n}", label=f"Extra {n}", display_order=100 + n)

    with django_assert_max_num_queries(4):
        response = ada.get(reverse("settings:lost_reasons"))

    assert "Extra 9" in response.text


# --- The audit log -----------------------------------------------------------------------------------------


def test_the_audit_log_shows_each_change_field_by_field_with_related_rows_by_name(ada, admin_user):
    mapping = config_row_save(
        obj=StripePriceMapping(), data={"price_id": "price_a", "plan": plan("Basic")}, by=admin_user, at=AT
    )
    config_row_save(obj=mapping, data={"plan": plan("Pro")}, by=admin_user, at=AT + dt.timedelta(minutes=1))

    response = ada.get(reverse("settings:audit"))

    assert response.status_code == 200
    diff = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))
    assert "Updated Stripe price mapping price_a → Pro" in diff
    assert "Plan Basic → Pro" in diff
    assert "Ada Stone" in diff


def test_the_audit_log_filters_by_type_by_person_and_by_object(ada, admin_user):
    other_admin = UserFactory(username="grace", first_name="Grace", last_name="Hopper", role="Admin")
    metric_save(metric=Metric(), data={"key": "dashboards", "label": "Dashboards"}, by=admin_user, at=AT)
    first = config_row_save(
        obj=StripePriceMapping(), data={"price_id": "price_a", "plan": plan("Basic")}, by=other_admin, at=AT
    )
    config_row_save(obj=StripePriceMapping(), data={"price_id": "price_b", "plan": plan("Pro")}, by=other_admin, at=AT)
    url = reverse("settings:audit")

    by_type = ada.get(url, {"object_type": "accounts.StripePriceMapping"}).text
    by_person = ada.get(url, {"actor": admin_user.pk}).text
    by_object = ada.get(url, {"object_type": "accounts.StripePriceMapping", "object_id": first.pk}).text

    assert "price_a" in by_type and "price_b" in by_type and "Dashboards" not in by_type
    assert "Dashboards" in by_person and "price_a" not in by_person
    assert "price_a" in by_object and "price_b" not in by_object
    assert "Showing one object" in by_object


def test_the_audit_log_answers_htmx_with_the_results_alone(ada, admin_user):
    metric_save(metric=Metric(), data={"key": "dashboards", "label": "Dashboards"}, by=admin_user, at=AT)

    response = ada.get(reverse("settings:audit"), {"actor": admin_user.pk}, headers={"HX-Request": "true"})

    assert response.text.lstrip().startswith('<section id="results"')
    assert "HX-Request" in response["Vary"]


def test_the_audit_log_pages_and_keeps_its_queries_fixed(ada, admin_user, django_assert_max_num_queries):
    for n in range(30):
        config_row_save(
            obj=StripePriceMapping(),
            data={"price_id": f"price_{n:02d}", "plan": plan("Pro" if n % 2 else "Basic")},
            by=admin_user,
            at=AT + dt.timedelta(minutes=n),
        )

    # Session, user, role; the filter's types and people; count, page; plans named in the page's diffs.
    with django_assert_max_num_queries(8):
        first = ada.get(reverse("settings:audit"))
    second = ada.get(reverse("settings:audit"), {"page": 2})

    assert "price_29" in first.text and "price_00" not in first.text
    assert "price_00" in second.text
    assert "30 changes" in re.sub(r"\s+", " ", first.text)


def test_a_history_link_to_a_type_without_changes_yet_shows_an_empty_log(ada):
    response = ada.get(reverse("settings:audit"), {"object_type": "opportunities.LostReason"})

    assert response.status_code == 200
    assert "No changes match" in response.text


# --- Access ------------------------------------------------------------------------------------------------


def catalogue_urls() -> list[tuple[str, str, dict]]:
    reason = LostReason.objects.first()
    mapping = StripePriceMapping.objects.create(price_id="price_x", plan=plan("Pro"))
    token = ApiToken.objects.create(name="t", prefix="upc_x", key_hash="0" * 64)
    seats = metric("seats")
    return [
        ("get", reverse("settings:metrics"), {}),
        ("get", reverse("settings:metric_create"), {}),
        ("post", reverse("settings:metric_edit", args=[seats.pk]), {"key": "seats", "label": "Hacked"}),
        ("get", reverse("settings:stripe_prices"), {}),
        ("post", reverse("settings:stripe_price_delete", args=[mapping.pk]), {}),
        ("get", reverse("settings:tokens"), {}),
        ("post", reverse("settings:tokens"), {"name": "mine"}),
        ("post", reverse("settings:token_revoke", args=[token.pk]), {}),
        ("get", reverse("settings:lost_reasons"), {}),
        ("post", reverse("settings:lost_reason_set_active", args=[reason.pk]), {"active": "0"}),
        ("post", reverse("settings:lost_reason_move", args=[reason.pk]), {"direction": "down"}),
        ("get", reverse("settings:audit"), {}),
    ]


@pytest.mark.parametrize("persona", ["csm", "manager"])
def test_it_refuses_csms_and_managers_every_catalogue_page_and_changes_nothing(db, client, persona, request):
    client.force_login(request.getfixturevalue(persona))

    for method, url, data in catalogue_urls():
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, url
        assert "This page is not open to you" in response.text

    assert ApiToken.objects.active().count() == 1
    assert StripePriceMapping.objects.count() == 1
    assert metric("seats").label == "Seats"
    assert LostReason.objects.filter(active=False).count() == 0
    assert AuditEntry.objects.count() == 0


def test_the_index_links_every_settings_area(ada):
    response = ada.get(reverse("settings:index"))

    assert response.status_code == 200
    for name in (
        "plans",
        "metrics",
        "lost_reasons",
        "stripe_prices",
        "tokens",
        "audit",
        "rules",
        "plays",
        "experiments",
    ):
        assert f'href="{reverse(f"settings:{name}")}"' in response.text, name


def test_the_index_lists_the_latest_changes(ada, admin_user):
    metric_save(metric=Metric(), data={"key": "dashboards", "label": "Dashboards"}, by=admin_user, at=timezone.now())

    response = ada.get(reverse("settings:index"))

    assert "Dashboards" in response.text
