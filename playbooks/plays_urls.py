"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py): the plays."""

from django.urls import path

from playbooks import play_views, sequence_urls

urlpatterns = [
    path("plays/", play_views.plays, name="plays"),
    path("plays/new/", play_views.play_create, name="play_create"),
    path("plays/<int:pk>/", play_views.play_edit, name="play_edit"),
    # The step editor of a play's sequence, on the play's page.
    *sequence_urls.settings_urlpatterns,
]
