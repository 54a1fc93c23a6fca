from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import settings_urls as account_settings_urls
from accounts import urls as account_urls
from accounts import views as account_views
from accounts import work_urls
from opportunities import settings_urls as opportunity_settings_urls
from opportunities import views as opportunity_views
from playbooks import experiments_urls, plays_urls, rules_urls, survey_views, surveys_urls, unsubscribe_views
from upsell_crm import health
from upsell_crm.api import urls as api_urls

# The "accounts" namespace joins the list (accounts) and the account page (opportunities, which may read
# both apps); here is the one place allowed to import every app.
account_patterns = [
    *account_urls.urlpatterns,
    path("<int:pk>/", opportunity_views.account_detail, name="detail"),
    path("reassign/", opportunity_views.accounts_reassign, name="reassign"),
]

# Admin settings, one namespace over the apps that own the configuration.
settings_patterns = [
    *account_settings_urls.urlpatterns,
    *opportunity_settings_urls.urlpatterns,
    *rules_urls.urlpatterns,
    *plays_urls.urlpatterns,
    *experiments_urls.urlpatterns,
    *surveys_urls.urlpatterns,
]

urlpatterns = [
    path("", opportunity_views.home, name="home"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # A customer answers an emailed survey here, without signing in: the signed token is the key.
    path("s/<str:token>/", survey_views.survey_public, name="survey_public"),
    # A play email's unsubscribe link (and RFC 8058 one-click POST), without signing in: the signed token.
    path("unsubscribe/<str:token>/", unsubscribe_views.unsubscribe, name="unsubscribe"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include((account_patterns, account_urls.app_name))),
    path("accounts/", include("playbooks.sequence_urls")),  # the account page's "Plays running" panel
    path("", include("opportunities.urls")),
    path("metrics/", include("opportunities.metrics_urls")),
    path("pipeline/", include("opportunities.pipeline_urls")),
    path("insights/", include("opportunities.insights_urls")),
    path("tasks/", include((work_urls.task_patterns, "tasks"))),
    path("notifications/", include((work_urls.notification_patterns, "notifications"))),
    path("settings/", include((settings_patterns, "settings"))),
    path("api/v1/", api_urls()),
    path("admin/", admin.site.urls),
]

# A database outage answers 503 (upsell_crm/unavailable.py); any other error, the 500 page.
handler500 = "upsell_crm.unavailable.server_error"
