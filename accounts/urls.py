from django.urls import path

from accounts import views

app_name = "accounts"

# The account page (`accounts:detail`) shows the account's opportunities, so it is wired in from
# opportunities.views by the root URLconf: accounts never imports the apps downstream of it.
urlpatterns = [
    path("", views.account_list, name="list"),
]
