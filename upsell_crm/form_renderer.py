"""The project's form renderer (settings.FORM_RENDERER): Django's, with the templates every page's fields go
through drawn in Python."""

from __future__ import annotations

from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape


def _attrs(attrs: dict) -> str:
    """django/forms/attrs.html: `False` leaves the attribute out, `True` writes its bare name."""
    return "".join(
        "" if value is False else f" {name}" if value is True else f' {name}="{conditional_escape(value)}"'
        for name, value in attrs.items()
    )


def _input(widget: dict) -> str:
    value = "" if widget["value"] is None else f' value="{conditional_escape(widget["value"])}"'
    return (
        f'<input type="{widget["type"]}" name="{conditional_escape(widget["name"])}"{value}{_attrs(widget["attrs"])}>'
    )


class FormRenderer(DjangoTemplates):
    """Django's form renderer with its commonest form templates written in Python, to the same markup.

    Django draws each field through four to six small templates (the group, its label, its errors, the
    widget, the widget's attributes, each option of a radio): on the account page, which draws two to five
    forms and some twenty fields on every load, that was a quarter of the page's time. The templates drawn
    here are Django's own, unchanged by the project (none is overridden under templates/django/forms/);
    any other template, a select's or the admin's, still renders as a template.
    tests/test_form_renderer.py holds the two renderers to the same HTML.
    """

    INPUTS = {f"django/forms/widgets/{name}.html" for name in ("text", "number", "email", "date", "hidden", "checkbox")}

    def render(self, template_name: str, context: dict, request=None) -> str:
        if template_name in self.INPUTS:
            return _input(context["widget"])
        drawn = {
            "django/forms/field.html": self._field,
            "django/forms/label.html": self._label,
            "django/forms/errors/list/default.html": self._errors,
            "django/forms/widgets/textarea.html": self._textarea,
            "django/forms/widgets/radio.html": self._radio,
        }.get(template_name)
        return drawn(context) if drawn else super().render(template_name, context, request)

    def _field(self, context: dict) -> str:
        field = context["field"]
        parts = []
        if field.use_fieldset:
            described = field.aria_describedby
            described = f' aria-describedby="{conditional_escape(described)}"' if described else ""
            parts.append(f"<fieldset{described}>")
            if field.label:
                parts.append(field.legend_tag())
        elif field.label:
            parts.append(field.label_tag())
        if field.help_text:
            helptext_id = f' id="{field.auto_id}_helptext"' if field.auto_id else ""
            parts.append(f'<div class="helptext"{helptext_id}>{field.help_text}</div>')
        parts.append(str(field.errors))
        parts.append(str(field))
        if field.use_fieldset:
            parts.append("</fieldset>")
        return "\n".join(part for part in parts if part)

    def _label(self, context: dict) -> str:
        if not context["use_tag"]:
            return conditional_escape(context["label"])
        tag = context["tag"]
        return f"<{tag}{_attrs(context['attrs'])}>{conditional_escape(context['label'])}</{tag}>"

    def _errors(self, context: dict) -> str:
        errors = context["errors"]
        if not errors:
            return ""
        error_id = f' id="{conditional_escape(errors.field_id)}_error"' if errors.field_id else ""
        items = "".join(f"<li>{conditional_escape(error)}</li>" for error in errors)
        return f'<ul class="{conditional_escape(context["error_class"])}"{error_id}>{items}</ul>'

    def _textarea(self, context: dict) -> str:
        widget = context["widget"]
        value = conditional_escape(widget["value"]) if widget["value"] else ""
        return f'<textarea name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'

    def _radio(self, context: dict) -> str:
        widget = context["widget"]
        element_id = widget["attrs"].get("id")
        opening = "<div" + (f' id="{conditional_escape(element_id)}"' if element_id else "")
        if widget["attrs"].get("class"):
            opening += f' class="{conditional_escape(widget["attrs"]["class"])}"'
        options = []
        for group, choices, _index in widget["optgroups"]:
            if group:
                options.append(f"<div><label>{conditional_escape(group)}</label>")
            for option in choices:
                label_for = f' for="{conditional_escape(option["attrs"]["id"])}"' if option["attrs"].get("id") else ""
                drawn = _input(option)
                if option["wrap_label"]:
                    drawn = f"<label{label_for}>{drawn} {conditional_escape(option['label'])}</label>"
                options.append(f"<div>\n    {drawn}</div>")
            if group:
                options.append("</div>")
        return f"{opening}>{''.join(options)}\n</div>"
