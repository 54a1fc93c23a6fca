"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py): the surveys."""

from django.urls import path

from playbooks import survey_views

urlpatterns = [
    path("surveys/", survey_views.surveys, name="surveys"),
    path("surveys/new/", survey_views.survey_create, name="survey_create"),
    path("surveys/<int:pk>/", survey_views.survey_edit, name="survey_edit"),
]
