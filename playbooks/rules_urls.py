"""Admin settings pages under /settings/ (namespace "settings", joined in upsell_crm/urls.py)."""

urlpatterns = []
