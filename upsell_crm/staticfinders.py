"""Serve plotly.js straight from the installed plotly package, as static/vendor/plotly.min.js."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PUBLIC_PATH = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Exposes exactly one file, so the rest of plotly's package data never becomes public."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(PLOTLY_JS.parent))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path == PUBLIC_PATH:
            found = str(PLOTLY_JS)
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        yield PLOTLY_JS.name, self.storage
