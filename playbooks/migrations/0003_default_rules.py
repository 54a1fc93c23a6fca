"""Ship sensible default rules and the scoring policy, so a fresh install flags candidates out of the box."""

from django.db import migrations

DEFAULT_RULES = [
    # name, metric, thresholds, weight
    ("Seats at 90% or more", "seats", {"min_utilization": 0.9}, 40),
    ("Seats limit within 30 days", "seats", {"max_days_to_limit": 30}, 30),
    ("Storage at 80% or more", "storage_gb", {"min_utilization": 0.8}, 35),
    ("Storage limit within 30 days", "storage_gb", {"max_days_to_limit": 30}, 30),
    ("Projects at 80% or more", "projects", {"min_utilization": 0.8}, 25),
    ("API calls at 80% or more", "api_calls", {"min_utilization": 0.8}, 25),
    ("Integrations at the limit", "integrations", {"min_utilization": 1.0}, 25),
    ("5+ locked-feature hits", None, {"min_locked_feature_hits": 5}, 20),
    ("Logins in the top quartile", None, {"min_login_percentile": 75}, 15),
    ("Premium features used in a trial", None, {"min_trial_feature_uses": 3}, 25),
]


def install(apps, schema_editor):
    Rule = apps.get_model("playbooks", "Rule")
    Metric = apps.get_model("accounts", "Metric")
    ScoringPolicy = apps.get_model("playbooks", "ScoringPolicy")
    ScoringPolicy.objects.get_or_create(pk=1)
    if Rule.objects.exists():
        return
    metrics = {m.key: m for m in Metric.objects.all()}
    for name, key, thresholds, weight in DEFAULT_RULES:
        if key and key not in metrics:
            continue
        Rule.objects.create(name=name, metric=metrics.get(key), weight=weight, **thresholds)


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0002_rule_login_percentile"), ("accounts", "0002_catalogue")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
