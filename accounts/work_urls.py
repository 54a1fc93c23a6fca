"""The URLs of a user's work, in two namespaces: `tasks` and `notifications` (included from the root)."""

from django.urls import path

from accounts import work_views as views

task_patterns = [
    path("", views.task_list, name="list"),
    path("<int:pk>/complete/", views.task_complete, name="complete"),
    path("accounts/<int:pk>/", views.task_add, name="add"),
]

notification_patterns = [
    path("", views.notification_list, name="list"),
    path("<int:pk>/read/", views.notification_read, name="read"),
    path("read/", views.notifications_read_all, name="read_all"),
    path("settings/", views.notification_settings, name="settings"),
]
