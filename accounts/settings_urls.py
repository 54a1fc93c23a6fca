"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py)."""

from django.urls import path

from accounts import settings_views as views

urlpatterns = [
    path("", views.index, name="index"),
    path("plans/", views.plans, name="plans"),
    path("plans/new/", views.plan_edit, name="plan_create"),
    path("plans/<int:pk>/", views.plan_edit, name="plan_edit"),
    path("metrics/", views.metrics, name="metrics"),
    path("metrics/new/", views.metric_edit, name="metric_create"),
    path("metrics/<int:pk>/", views.metric_edit, name="metric_edit"),
    path("stripe-prices/", views.stripe_prices, name="stripe_prices"),
    path("stripe-prices/new/", views.stripe_price_edit, name="stripe_price_create"),
    path("stripe-prices/<int:pk>/", views.stripe_price_edit, name="stripe_price_edit"),
    path("stripe-prices/<int:pk>/delete/", views.stripe_price_delete, name="stripe_price_delete"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("audit/", views.audit, name="audit"),
]
