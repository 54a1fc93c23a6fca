"""The URLs of automated plays.

- `settings_urlpatterns`: the step editor of a play, under /settings/ (joined into the "settings" namespace
  by playbooks/plays_urls.py);
- `urlpatterns` (namespace "sequences", under /accounts/ in upsell_crm/urls.py): starting a play on an account,
  pausing, resuming and stopping it, from the account page's "Plays running" panel.
"""

from django.urls import path

from playbooks import sequence_views

app_name = "sequences"

settings_urlpatterns = [
    path("plays/<int:pk>/steps/new/", sequence_views.play_step_create, name="play_step_create"),
    path("plays/<int:pk>/steps/<int:step_pk>/", sequence_views.play_step_edit, name="play_step_edit"),
    path("plays/<int:pk>/steps/<int:step_pk>/delete/", sequence_views.play_step_delete, name="play_step_delete"),
    path("plays/<int:pk>/steps/<int:step_pk>/move/", sequence_views.play_step_move, name="play_step_move"),
]

urlpatterns = [
    path("<int:pk>/plays/start/", sequence_views.enrollment_start, name="enrollment_start"),
    path("plays/<int:pk>/pause/", sequence_views.enrollment_pause, name="enrollment_pause"),
    path("plays/<int:pk>/resume/", sequence_views.enrollment_resume, name="enrollment_resume"),
    path("plays/<int:pk>/stop/", sequence_views.enrollment_stop, name="enrollment_stop"),
]
