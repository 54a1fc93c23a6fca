"""The insights area for managers and admins, one URL per section (see opportunities.insights_views.SECTIONS)."""

from django.urls import path

from opportunities import insights_views, voice_views

app_name = "insights"

urlpatterns = [
    path("", insights_views.insights_adoption, name="adoption"),
    path("predictors/", insights_views.insights_predictors, name="predictors"),
    path("cohorts/", insights_views.insights_cohorts, name="cohorts"),
    path("surveys/", voice_views.insights_surveys, name="surveys"),
    path("feedback/", voice_views.insights_feedback, name="feedback"),
    path("win-loss/", voice_views.insights_winloss, name="winloss"),
]
