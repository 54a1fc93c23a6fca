"""Install the metrics catalogue and the three plans of DOMAIN.md, so a fresh install has them."""

from django.db import migrations

from accounts.catalogue import FEATURES, METRICS, PLANS


def install(apps, schema_editor):
    Metric = apps.get_model("accounts", "Metric")
    Plan = apps.get_model("accounts", "Plan")
    PlanLimit = apps.get_model("accounts", "PlanLimit")
    PlanFeature = apps.get_model("accounts", "PlanFeature")

    metrics = {}
    for key, label, unit, kind, order in METRICS:
        metrics[key], _ = Metric.objects.get_or_create(
            key=key, defaults={"label": label, "unit": unit, "kind": kind, "display_order": order}
        )
    feature_labels = {key: (label, order) for key, label, order in FEATURES}
    for spec in PLANS:
        plan, created = Plan.objects.get_or_create(
            name=spec["name"],
            defaults={
                "tier_rank": spec["tier_rank"],
                "monthly_price": spec["monthly_price"],
                "annual_price": spec["annual_price"],
                "currency": "USD",
                "description": spec["description"],
            },
        )
        if not created:
            continue
        PlanLimit.objects.bulk_create(
            PlanLimit(plan=plan, metric=metrics[key], limit=limit) for key, limit in spec["limits"].items()
        )
        PlanFeature.objects.bulk_create(
            PlanFeature(
                plan=plan, key=key, value=value, label=feature_labels[key][0], display_order=feature_labels[key][1]
            )
            for key, value in spec["features"].items()
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
