from django.urls import path

from accounts import import_views, views

app_name = "accounts"

# The account page (`accounts:detail`) shows the account's opportunities, so it is wired in from
# opportunities.views by the root URLconf: accounts never imports the apps downstream of it.
urlpatterns = [
    path("", views.account_list, name="list"),
    path("imports/", import_views.imports, name="imports"),
    path("imports/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:pk>/errors.csv", import_views.import_errors, name="import_errors"),
    path("imports/templates/<slug:kind>.csv", import_views.import_template, name="import_template"),
]
