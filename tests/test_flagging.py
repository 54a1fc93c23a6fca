"""Flagging: scores become opportunities, idempotently, with guards, cool-off and hysteresis."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, AccountEngagement, AccountIndicator
from opportunities.flagging import opportunities_flag
from opportunities.models import AccountScore, Opportunity, OpportunityEvent, Outcome, ScoreHistory, Stage
from playbooks.models import Play, Rule, ScoringPolicy, Touch
from playbooks.services import touch_record
from tests.factories import AccountFactory, OpportunityFactory, metric, plan

AS_OF = dt.date(2026, 11, 20)
AT = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)


def set_usage(account, key, latest, slope=0.0, limit=None):
    """An indicator row as the refresh would write it."""
    from accounts import indicators as ind

    if limit is None:
        limit = next((pl.limit for pl in account.plan.limits.all() if pl.metric.key == key), None)
    days = ind.days_to_limit(latest, limit, slope)
    AccountIndicator.objects.update_or_create(
        account=account,
        metric=metric(key),
        defaults={
            "as_of": AS_OF,
            "latest": latest,
            "limit": limit,
            "utilization": ind.utilization(latest, limit),
            "slope_per_day": slope,
            "days_to_limit": days,
            "projected_limit_on": ind.projected_date(AS_OF, days),
            "points": 30,
            "refreshed_at": AT,
        },
    )


def flag(at=AT, as_of=AS_OF, **kwargs):
    return opportunities_flag(as_of=as_of, at=at, **kwargs)


def open_opportunity(account):
    return Opportunity.objects.open().get(account=account)


def test_it_opens_an_identify_opportunity_with_reasons_for_an_account_near_its_storage_limit(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)  # 92% of 10 GB, full in 8 days

    result = flag()

    opp = open_opportunity(account)
    assert result.created == 1
    assert opp.stage == Stage.IDENTIFY
    assert opp.owner == account.owner
    assert opp.score == 65  # storage ≥ 80% (35) + storage limit within 30 days (30)
    assert [r["rule"] for r in opp.reasons] == ["Storage at 80% or more", "Storage limit within 30 days"]
    assert opp.reasons[0]["text"] == "Storage at 92% of 10 GB, growing 0.1 GB/day: full around 28 Nov"
    assert opp.reasons[0]["signals"] == {"utilization": 0.92}
    assert opp.target_plan == plan("Pro")
    assert opp.expected_mrr_delta == Decimal("70.00")
    assert opp.events.get().kind == OpportunityEvent.Kind.CREATED


def test_it_leaves_accounts_below_the_threshold_alone_but_still_records_their_score(account):
    set_usage(account, "projects", 8.5)  # 85% of 10 projects: 25 points, threshold 40

    flag()

    assert not Opportunity.objects.exists()
    assert AccountScore.objects.get(account=account).score == 25
    assert ScoreHistory.objects.get(account=account).score == 25


def test_it_updates_the_open_opportunity_on_a_rerun_instead_of_opening_another(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    flag()
    set_usage(account, "seats", 5)  # seats full too: +40

    result = flag(at=AT + dt.timedelta(hours=1))

    opp = open_opportunity(account)
    assert Opportunity.objects.count() == 1
    assert result.updated == 1
    assert opp.score == 100
    assert opp.version == 2


def test_it_writes_nothing_when_a_rerun_finds_the_same_score(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    flag()

    result = flag(at=AT + dt.timedelta(hours=1))

    assert (result.created, result.updated, result.cleared) == (0, 0, 0)
    assert open_opportunity(account).version == 1


def test_it_does_not_flag_churned_accounts(csm):
    account = AccountFactory(owner=csm, status=Account.Status.CHURNED, mrr=0)
    set_usage(account, "storage_gb", 9.9, slope=0.1)

    flag()

    assert not Opportunity.objects.exists()


def test_it_does_not_flag_accounts_already_on_the_top_tier(csm):
    account = AccountFactory(owner=csm, plan=plan("Enterprise"), mrr=Decimal("299"))
    set_usage(account, "storage_gb", 1000, slope=5)

    result = flag()

    assert not Opportunity.objects.exists()
    assert result.skipped == {"top_tier": 1}


@pytest.mark.parametrize("outcome", [Outcome.LOST, Outcome.SNOOZED])
def test_it_waits_out_the_cool_off_after_a_lost_or_snoozed_outcome(account, outcome):
    closed = OpportunityFactory(
        account=account,
        outcome=outcome,
        closed_at=AT - dt.timedelta(days=59),
        lost_reason_id=1 if outcome == Outcome.LOST else None,
        snoozed_until=AS_OF - dt.timedelta(days=1) if outcome == Outcome.SNOOZED else None,
    )
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag()
    assert Opportunity.objects.open().count() == 0

    Opportunity.objects.filter(pk=closed.pk).update(closed_at=AT - dt.timedelta(days=61))
    flag()
    assert Opportunity.objects.open().count() == 1


def test_it_does_not_flag_while_a_snooze_is_still_running(account):
    OpportunityFactory(
        account=account,
        outcome=Outcome.SNOOZED,
        closed_at=AT - dt.timedelta(days=90),
        snoozed_until=AS_OF + dt.timedelta(days=5),
    )
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag()

    assert Opportunity.objects.open().count() == 0


def test_it_keeps_an_opportunity_whose_score_dips_within_the_margin(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)  # 65
    flag()
    set_usage(account, "storage_gb", 8.5, slope=0.0)  # 35: below 40 but not below 40 − 10

    result = flag(at=AT + dt.timedelta(days=1))

    assert result.cleared == 0
    assert open_opportunity(account).score == 35


def test_it_clears_an_untouched_opportunity_whose_signals_faded(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    flag()
    set_usage(account, "storage_gb", 5.0, slope=0.0)  # 0 points

    result = flag(at=AT + dt.timedelta(days=1))

    opp = Opportunity.objects.get(account=account)
    assert result.cleared == 1
    assert opp.outcome == Outcome.CLEARED
    assert opp.closed_at == AT + dt.timedelta(days=1)
    event = opp.events.get(kind=OpportunityEvent.Kind.CLOSED)
    assert event.message.startswith("Signal cleared")


def test_it_never_clears_an_opportunity_a_csm_is_working(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    flag()
    Opportunity.objects.filter(account=account).update(stage=Stage.QUALIFY)
    set_usage(account, "storage_gb", 5.0, slope=0.0)

    flag(at=AT + dt.timedelta(days=1))

    assert open_opportunity(account).stage == Stage.QUALIFY


def test_it_suggests_the_cheapest_tier_that_covers_usage_projected_90_days_out(account):
    set_usage(account, "seats", 5, slope=0.3)  # 5 + 27 = 32 seats in 90 days: beyond Pro's 25

    flag()

    assert open_opportunity(account).target_plan == plan("Enterprise")


def test_it_honours_the_admins_threshold(account):
    ScoringPolicy.objects.filter(pk=1).update(flag_threshold=70)
    set_usage(account, "storage_gb", 9.2, slope=0.1)  # 65

    flag()

    assert not Opportunity.objects.exists()


def test_it_applies_rules_only_to_their_plans(account):
    rule = Rule.objects.get(name="Storage at 80% or more")
    rule.plans.set([plan("Pro")])
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag()

    assert [r["rule"] for r in AccountScore.objects.get(account=account).reasons] == ["Storage limit within 30 days"]


def test_it_scores_engagement_rules(account):
    AccountEngagement.objects.create(account=account, as_of=AS_OF, locked_feature_hits=7, refreshed_at=AT)

    flag()

    reason = AccountScore.objects.get(account=account).reasons[0]
    assert reason["text"] == "7 locked-feature hits in 30 days"
    assert reason["points"] == 20


def test_it_runs_a_fixed_number_of_queries_per_chunk(csm):
    def seed(n):
        for _ in range(n):
            a = AccountFactory(owner=csm)
            set_usage(a, "storage_gb", 9.2, slope=0.1)

    def queries(at):
        with CaptureQueriesContext(connection) as ctx:
            flag(at=at, chunk_size=100)
        return len(ctx.captured_queries)

    seed(2)
    small = queries(AT)
    Opportunity.objects.all().delete()
    seed(20)
    large = queries(AT + dt.timedelta(hours=1))

    assert small == large
    assert Opportunity.objects.open().count() == 22


def test_it_opens_one_opportunity_when_another_one_appeared_meanwhile(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    OpportunityFactory(account=account, source=Opportunity.Source.MANUAL, identified_at=timezone.now())

    flag()

    assert Opportunity.objects.open().count() == 1


def storage_plays():
    """Two plays on the default storage rules: the 80% rule (35 points) outranks the 30-day one (30)."""
    talk = Play.objects.create(name="Storage talk", min_days_between_touches=7)
    talk.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    soon = Play.objects.create(name="Storage soon", min_days_between_touches=7)
    soon.rules.add(Rule.objects.get(name="Storage limit within 30 days"))
    return talk, soon


def test_it_starts_the_play_whose_rules_scored_most(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    talk, _ = storage_plays()

    flag()

    assert open_opportunity(account).play == talk


def test_it_passes_over_a_play_still_within_its_gap_since_it_last_touched_the_account(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    talk, soon = storage_plays()
    touch_record(
        account=account,
        play=talk,
        variant=None,
        kind=Touch.Kind.PROMPT_IMPRESSION,
        by=None,
        at=AT - dt.timedelta(days=2),
    )

    flag()

    assert open_opportunity(account).play == soon


def test_it_opens_the_opportunity_without_a_play_when_the_account_had_its_touches_of_the_month(account):
    set_usage(account, "storage_gb", 9.2, slope=0.1)
    storage_plays()
    ScoringPolicy.objects.update_or_create(pk=1, defaults={"max_touches_per_30_days": 2})
    for days in (3, 25):
        touch_record(
            account=account, play=None, variant=None, kind=Touch.Kind.EMAIL, by=None, at=AT - dt.timedelta(days=days)
        )

    flag()

    opportunity = open_opportunity(account)
    assert opportunity.play is None
    assert opportunity.score == 65


def test_it_checks_pitch_fatigue_in_a_fixed_number_of_queries_per_chunk(csm):
    talk, _ = storage_plays()

    def seed(n):
        for _ in range(n):
            a = AccountFactory(owner=csm)
            set_usage(a, "storage_gb", 9.2, slope=0.1)
            touch_record(
                account=a, play=talk, variant=None, kind=Touch.Kind.EMAIL, by=None, at=AT - dt.timedelta(days=1)
            )

    def queries(at):
        with CaptureQueriesContext(connection) as ctx:
            flag(at=at, chunk_size=100)
        return len(ctx.captured_queries)

    seed(2)
    small = queries(AT)
    Opportunity.objects.all().delete()
    seed(20)
    large = queries(AT + dt.timedelta(hours=1))

    assert small == large
    assert set(Opportunity.objects.values_list("play__name", flat=True)) == {"Storage soon"}
