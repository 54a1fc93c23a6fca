"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py): the rules editor."""

from django.urls import path

from playbooks import rule_views

urlpatterns = [
    path("rules/", rule_views.rules, name="rules"),
    path("rules/new/", rule_views.rule_create, name="rule_create"),
    path("rules/<int:pk>/", rule_views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/enabled/", rule_views.rule_toggle, name="rule_toggle"),
]
