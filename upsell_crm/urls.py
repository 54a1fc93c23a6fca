from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as account_views
from upsell_crm import health
from upsell_crm.api import urls as api_urls

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", api_urls()),
    path("admin/", admin.site.urls),
]
