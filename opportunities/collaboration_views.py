"""Adding and removing an opportunity's account executives, from its panel on the account page
(templates/opportunities/collaborators.html). Both answer like the panel's other forms: the fresh panel for
htmx (409 when stale, 422 with the form's errors), the account page without JavaScript."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from opportunities import collaboration
from opportunities.forms import CollaboratorAddForm, CollaboratorRemoveForm
from opportunities.models import Opportunity

# The panel's own helpers: the same lookup (a 404 for whoever may not see it), the same answers.
from opportunities.views import _invalid, _opportunity_or_404, _run


def _team_opportunity(request: HttpRequest, pk: int) -> Opportunity:
    """The opportunity, if the user sees it (404 otherwise) and may change its team (403 otherwise: a
    collaborator sees it but does not choose who else works on it)."""
    opportunity = _opportunity_or_404(request, pk)
    if not collaboration.may_manage_collaborators(user=request.user, opportunity=opportunity):
        raise PermissionDenied("Only the opportunity's CSM, a manager or an admin changes who works on it.")
    return opportunity


def _display_name(user) -> str:
    return user.get_full_name() or user.get_username()


@require_POST
def collaborator_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring an account executive onto the opportunity (`user`, `version`)."""
    opportunity = _team_opportunity(request, pk)
    form = CollaboratorAddForm(request.POST, opportunity=opportunity)
    if not form.is_valid():
        return _invalid(request, opportunity, collaborator_form=form)
    user = form.cleaned_data["user"]
    return _run(
        request,
        opportunity,
        lambda: collaboration.collaborator_add(
            opportunity=opportunity,
            user=user,
            by=request.user,
            at=timezone.now(),
            version=form.cleaned_data["version"],
        ),
        success=f"{_display_name(user)} now works on this opportunity.",
        collaborator_form=form,
    )


@require_POST
def collaborator_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Take an account executive off the opportunity (`user`, `version`)."""
    opportunity = _team_opportunity(request, pk)
    form = CollaboratorRemoveForm(request.POST, opportunity=opportunity)
    if not form.is_valid():
        return _invalid(request, opportunity, collaborator_remove_form=form)
    user = form.cleaned_data["user"]
    return _run(
        request,
        opportunity,
        lambda: collaboration.collaborator_remove(
            opportunity=opportunity,
            user=user,
            by=request.user,
            at=timezone.now(),
            version=form.cleaned_data["version"],
        ),
        success=f"{_display_name(user)} no longer works on this opportunity.",
    )
