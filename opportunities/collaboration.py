"""Account executives on an opportunity: who may bring them on, who may be brought on, and the two writes.

The CSM who owns an opportunity (or its account), a manager or an admin adds a user of the Sales role as a
collaborator. From then on the opportunity is in the collaborator's queue, its account page opens for them
and they work it like its owner (`Opportunity.visible_to`, `Account.visible_to`); they are notified, and the
leaderboard credits them for its win (`pipeline_stats.leaderboard`). A collaborator cannot bring on others.

Only users in the Sales group can be added: the feature hands an opportunity over to sales, it does not
share work between CSMs (a manager reassigns for that). A user who is in both the CSM and the Sales group
acts as a CSM everywhere and may still be added; their queue marks those opportunities.

Adding and removing claim the opportunity's version and write one audit event each, like every other write
(`services._claim`, `services._event`): a form drawn before someone else's change gets a Conflict. Once an
opportunity is won or lost its team stays as it closed, so nobody joins a win after the fact.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts import selectors as account_selectors
from accounts.models import Notification
from accounts.roles import Role, is_manager_or_admin
from accounts.work_services import notify
from opportunities.models import Collaborator, Opportunity, OpportunityEvent, Outcome
from opportunities.services import Conflict, TransitionNotAllowed, _claim, _event

# The outcomes whose team may still change: open, and set aside until a date (it comes back to be worked).
TEAM_OUTCOMES = (Outcome.OPEN, Outcome.SNOOZED)


class CollaborationRefused(TransitionNotAllowed):
    """The collaborator cannot be added or removed (wrong person, closed opportunity, not allowed)."""


def _name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def may_manage_collaborators(*, user: AbstractBaseUser, opportunity: Opportunity) -> bool:
    """Whether `user` may add and remove collaborators: the opportunity's owner, the owner of its account, a
    manager or an admin. A collaborator works the opportunity but does not choose who else does."""
    if is_manager_or_admin(user):
        return True
    return user.pk is not None and user.pk in (opportunity.owner_id, opportunity.account.owner_id)


def collaborator_candidates(*, opportunity: Opportunity) -> QuerySet:
    """The users who may be added to `opportunity`: active members of the Sales group, not its owner and not
    on it already, by name."""
    return (
        get_user_model()
        .objects.filter(groups__name=Role.SALES, is_active=True)
        .exclude(pk__in=Collaborator.objects.filter(opportunity=opportunity).values("user_id"))
        .exclude(pk=opportunity.owner_id or 0)
        .order_by("first_name", "last_name", "username")
    )


def sales_users() -> list:
    """Active members of the Sales group, by name (reference data): whom a CSM may bring onto an opportunity."""
    return account_selectors.users_in_role(Role.SALES)


def opportunity_collaborators(*, opportunity: Opportunity) -> list[Collaborator]:
    """The opportunity's collaborators with who added them, in the order they joined."""
    return list(
        Collaborator.objects.filter(opportunity=opportunity)
        .select_related("user", "added_by")
        .order_by("added_at", "pk")
    )


def collaboration_panel(*, opportunity: Opportunity, user: AbstractBaseUser) -> dict:
    """What templates/opportunities/collaborators.html shows on the opportunity panel, in one query at most: the
    collaborators, and whether `user` may change the team (they may, and it can still change)."""
    may_manage = may_manage_collaborators(user=user, opportunity=opportunity)
    # An opportunity read with `has_collaborators` (opportunities.selectors.account_for_page) that has none
    # needs no query.
    none = getattr(opportunity, "has_collaborators", True) is False
    return {
        "collaborators": [] if none else opportunity_collaborators(opportunity=opportunity),
        "may_manage_collaborators": may_manage and opportunity.outcome in TEAM_OUTCOMES,
    }


def _require_team_change(*, opportunity: Opportunity, by: AbstractBaseUser, version: int) -> None:
    if not may_manage_collaborators(user=by, opportunity=opportunity):
        raise CollaborationRefused("Only the opportunity's CSM, a manager or an admin changes who works on it.")
    if opportunity.version != version:
        raise Conflict(f"Opportunity {opportunity.pk} changed since version {version}.")
    if opportunity.outcome not in TEAM_OUTCOMES:
        raise CollaborationRefused("This opportunity is closed: its team stays as it closed.")


@transaction.atomic
def collaborator_add(
    *, opportunity: Opportunity, user: AbstractBaseUser, by: AbstractBaseUser, at: dt.datetime, version: int
) -> Collaborator:
    """Bring `user` (an active member of the Sales group) onto an open or snoozed opportunity, and tell them.

    Claims the opportunity at `version`, writes a COLLABORATOR_ADDED event and a COLLABORATOR_ADDED
    notification (kept once per collaboration: adding someone again after removing them notifies again).
    """
    _require_team_change(opportunity=opportunity, by=by, version=version)
    if not collaborator_candidates(opportunity=opportunity).filter(pk=user.pk).exists():
        if Collaborator.objects.filter(opportunity=opportunity, user=user).exists():
            raise CollaborationRefused(f"{_name(user)} already works on this opportunity.")
        raise CollaborationRefused(f"{_name(user)} is not an account executive (a user in the Sales role).")
    _claim(opportunity, version=version, at=at, outcomes=TEAM_OUTCOMES)
    try:
        with transaction.atomic():
            collaborator = Collaborator.objects.create(opportunity=opportunity, user=user, added_by=by, added_at=at)
    except IntegrityError as error:
        # Someone added them between the check and the insert; the outer transaction undoes the claim.
        raise CollaborationRefused(f"{_name(user)} already works on this opportunity.") from error
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.COLLABORATOR_ADDED,
        by=by,
        at=at,
        changes={"user": user.pk},
        message=f"{_name(user)} works on it with {_name(opportunity.owner) if opportunity.owner else 'the team'}",
    )
    notify(
        recipient=user,
        kind=Notification.Kind.COLLABORATOR_ADDED,
        title=f"{_name(by)} added you to the opportunity on {opportunity.account.name}",
        at=at,
        url=opportunity.get_absolute_url(),
        account=opportunity.account,
        dedupe_key=f"collaborator:{collaborator.pk}",
    )
    return collaborator


@transaction.atomic
def collaborator_remove(
    *, opportunity: Opportunity, user: AbstractBaseUser, by: AbstractBaseUser, at: dt.datetime, version: int
) -> None:
    """Take `user` off an open or snoozed opportunity: it leaves their queue and, unless they see the account
    otherwise, their account list. Claims the opportunity at `version` and writes a COLLABORATOR_REMOVED event."""
    _require_team_change(opportunity=opportunity, by=by, version=version)
    _claim(opportunity, version=version, at=at, outcomes=TEAM_OUTCOMES)
    removed, _ = Collaborator.objects.filter(opportunity=opportunity, user=user).delete()
    if not removed:
        raise CollaborationRefused(f"{_name(user)} does not work on this opportunity.")
    _event(
        opportunity,
        kind=OpportunityEvent.Kind.COLLABORATOR_REMOVED,
        by=by,
        at=at,
        changes={"user": user.pk},
        message=f"{_name(user)} no longer works on it",
    )
