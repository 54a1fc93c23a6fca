from django.urls import path

from opportunities import metrics_views

app_name = "metrics"

urlpatterns = [
    path("", metrics_views.metrics_page, name="page"),
]
