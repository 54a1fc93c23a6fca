from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"
    verbose_name = "Rules and playbooks"

    def ready(self) -> None:
        from accounts import reference
        from playbooks import (
            feedback,  # noqa: F401 - connects the downgrade and churn feedback receiver
            receivers,  # noqa: F401 - connects the sequences' stop on upgrade
        )
        from playbooks.models import Play, SequenceStep

        reference.watch(Play, SequenceStep)
