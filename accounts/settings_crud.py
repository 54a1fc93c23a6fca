"""The edit flow every catalogue row's settings page shares (metrics, Stripe prices, lost reasons).

GET shows the form; a valid POST goes through one save service, whose ValidationError lands back on the
form; success is a message and a redirect to the list, anything else the form again with a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def add_service_errors(form: BaseForm, error: ValidationError) -> None:
    """A service's ValidationError onto the form: by field where the form has it, above the form otherwise."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for name, messages_ in error.message_dict.items():
        form.add_error(name if name in form.fields and name in form.cleaned_data else None, messages_)


def catalogue_row_edit(
    request: HttpRequest,
    *,
    form: BaseForm,
    save: Callable[[dict[str, Any]], Model],
    saved_message: Callable[[Model], str],
    list_url: str,
    page: Callable[[], dict[str, object]],
) -> HttpResponse:
    """Render or process one catalogue row's form. `page` gives the rest of the form page's context (title,
    intro, back link, history); it is called after validation, which has already copied the input onto the
    row."""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                saved = save(form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, saved_message(saved))
                return redirect(list_url)
        status = 422
    return render(request, "settings/catalogue/form.html", {"form": form, **page()}, status=status)
