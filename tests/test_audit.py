"""The audit trail keeps who changed which configuration row, when, and what changed."""

import datetime as dt

from accounts.audit import audit_record, audit_snapshot
from accounts.models import AuditEntry, Plan
from playbooks.models import Rule

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def test_it_records_only_the_fields_an_update_changed(admin_user):
    plan = Plan.objects.get(name="Pro")
    before = audit_snapshot(plan)
    plan.monthly_price = "109.00"
    plan.save()

    entry = audit_record(obj=plan, action="updated", before=before, after=audit_snapshot(plan), by=admin_user, at=AT)

    assert (entry.object_type, entry.object_id, entry.actor) == ("accounts.Plan", str(plan.pk), admin_user)
    assert entry.before == {"monthly_price": "99.00"}
    assert entry.after == {"monthly_price": "109.00"}


def test_an_update_that_changed_nothing_leaves_no_entry(admin_user):
    plan = Plan.objects.get(name="Pro")
    snapshot = audit_snapshot(plan)

    assert audit_record(obj=plan, action="updated", before=snapshot, after=snapshot, by=admin_user, at=AT) is None
    assert AuditEntry.objects.count() == 0


def test_a_snapshot_lists_many_to_many_ids_and_foreign_keys(db):
    rule = Rule.objects.create(name="Seats 95%", metric_id=None, min_logins_per_week=3, weight=10)
    rule.plans.set(Plan.objects.filter(name__in=["Basic", "Pro"]))

    snapshot = audit_snapshot(rule, fields=["name", "plans", "metric"])

    assert snapshot == {
        "name": "Seats 95%",
        "metric": None,
        "plans": sorted(Plan.objects.filter(name__in=["Basic", "Pro"]).values_list("pk", flat=True)),
    }
