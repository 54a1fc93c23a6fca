"""factory-boy factories for the domain. Catalogue rows (metrics, plans) come from the data migration."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from accounts.models import Account, EngagementEvent, Metric, MrrMovement, Plan, UsageSnapshot
from opportunities.models import Opportunity


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


def plan(name: str) -> Plan:
    return Plan.objects.get(name=name)


def metric(key: str) -> Metric:
    return Metric.objects.get(key=key)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"acct-{n:05d}")
    name = factory.Sequence(lambda n: f"Company {n}")
    plan = factory.LazyFunction(lambda: plan("Basic"))
    mrr = Decimal("29.00")
    industry = "Software"
    employees = 25
    region = "EMEA"
    first_purchase_on = dt.date(2025, 6, 1)
    plan_started_on = dt.date(2025, 6, 1)


class UsageSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageSnapshot

    account = factory.SubFactory(AccountFactory)
    metric = factory.LazyFunction(lambda: metric("seats"))
    value = 3
    captured_on = dt.date(2026, 11, 1)


class EngagementEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EngagementEvent

    account = factory.SubFactory(AccountFactory)
    kind = EngagementEvent.Kind.LOGIN
    occurred_at = factory.LazyFunction(timezone.now)
    external_id = factory.Sequence(lambda n: f"evt-{n}")


class MrrMovementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MrrMovement

    account = factory.SubFactory(AccountFactory)
    occurred_on = dt.date(2026, 1, 1)
    kind = MrrMovement.Kind.EXPANSION
    mrr_before = Decimal("29.00")
    mrr_after = Decimal("99.00")


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    account = factory.SubFactory(AccountFactory)
    owner = factory.SelfAttribute("account.owner")
    score = 60
    identified_at = factory.LazyFunction(timezone.now)
    stage_entered_at = factory.LazyFunction(timezone.now)
