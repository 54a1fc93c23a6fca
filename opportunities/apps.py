from django.apps import AppConfig


class OpportunitiesConfig(AppConfig):
    name = "opportunities"
    verbose_name = "Opportunities"

    def ready(self) -> None:
        from accounts import reference
        from opportunities import receivers  # noqa: F401 - connects the receivers
        from opportunities.models import LostReason

        reference.watch(LostReason)
