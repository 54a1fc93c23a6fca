"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py)."""

from django.urls import path

from opportunities import settings_views as views

urlpatterns = [
    path("lost-reasons/", views.lost_reasons, name="lost_reasons"),
    path("lost-reasons/new/", views.lost_reason_edit, name="lost_reason_create"),
    path("lost-reasons/<int:pk>/", views.lost_reason_edit, name="lost_reason_edit"),
    path("lost-reasons/<int:pk>/move/", views.lost_reason_move, name="lost_reason_move"),
    path("lost-reasons/<int:pk>/active/", views.lost_reason_set_active, name="lost_reason_set_active"),
]
