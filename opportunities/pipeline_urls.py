from django.urls import path

from opportunities import pipeline_views

app_name = "pipeline"

urlpatterns = [
    path("", pipeline_views.pipeline_page, name="page"),
]
