"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py): A/B tests."""

from django.urls import path

from playbooks import experiment_views

urlpatterns = [
    path("experiments/", experiment_views.experiments, name="experiments"),
    path("experiments/new/", experiment_views.experiment_create, name="experiment_create"),
    path("experiments/<int:pk>/", experiment_views.experiment_detail, name="experiment_detail"),
    path("experiments/<int:pk>/start/", experiment_views.experiment_start, name="experiment_start"),
    path("experiments/<int:pk>/stop/", experiment_views.experiment_stop, name="experiment_stop"),
]
