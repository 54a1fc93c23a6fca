from django.urls import path

from opportunities import collaboration_views, views

app_name = "opportunities"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/next/", views.queue_next, name="queue_next"),
    path("opportunities/<int:pk>/actions/", views.opportunity_actions, name="actions"),
    path("opportunities/<int:pk>/advance/", views.opportunity_advance, name="advance"),
    path("opportunities/<int:pk>/snooze/", views.opportunity_snooze, name="snooze"),
    path("opportunities/<int:pk>/reopen/", views.opportunity_reopen, name="reopen"),
    path("opportunities/<int:pk>/assign/", views.opportunity_assign, name="assign"),
    path("opportunities/<int:pk>/qualify/", views.opportunity_qualify, name="qualify"),
    path("opportunities/<int:pk>/present/", views.opportunity_present, name="present"),
    path("opportunities/<int:pk>/email/", views.opportunity_email, name="email"),
    path("opportunities/<int:pk>/close/", views.opportunity_close, name="close"),
    path("opportunities/<int:pk>/collaborators/", collaboration_views.collaborator_add, name="collaborator_add"),
    path(
        "opportunities/<int:pk>/collaborators/remove/",
        collaboration_views.collaborator_remove,
        name="collaborator_remove",
    ),
    path("accounts/<int:pk>/opportunities/", views.opportunity_open, name="open"),
    path("accounts/<int:pk>/notes/", views.note_add, name="note_add"),
    path("accounts/<int:pk>/timeline/", views.account_timeline, name="timeline"),
]
