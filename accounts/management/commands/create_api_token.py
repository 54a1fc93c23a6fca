from django.core.management.base import BaseCommand

from accounts.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token. The token is printed once, alone on the last line, and never stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What will use the token, e.g. 'usage exporter'.")

    def handle(self, *args, name, **options):
        token, raw = api_token_create(name=name)
        self.stderr.write(f"Created API token {token.prefix}… ({token.name}). Store it now: it is not shown again.")
        self.stdout.write(raw)
