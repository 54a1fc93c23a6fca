"""The upload form of the CSV import: the file is checked here, before any job exists."""

from __future__ import annotations

from django import forms

from accounts.imports import FORMATS, MAX_BYTES, UploadError, upload_check
from accounts.models import ImportJob


class ImportUploadForm(forms.Form):
    ON_ERROR_CHOICES = [
        ("reject", "Import nothing if any row is invalid (recommended)"),
        ("skip", "Import the valid rows and skip the invalid ones"),
    ]

    kind = forms.ChoiceField(label="What the file holds", choices=ImportJob.Kind.choices, widget=forms.RadioSelect)
    file = forms.FileField(
        label="CSV file",
        error_messages={"empty": "The file is empty.", "required": "Choose a CSV file."},
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    on_error = forms.ChoiceField(
        label="When rows are invalid", choices=ON_ERROR_CHOICES, initial="reject", widget=forms.RadioSelect
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        upload, kind = cleaned.get("file"), cleaned.get("kind")
        if upload is None or kind not in FORMATS:
            return cleaned
        # Read one byte past the limit: enough to tell an oversized file without holding all of it.
        data = upload.read(MAX_BYTES + 1)
        try:
            cleaned["checked"] = upload_check(data=data, kind=kind)
        except UploadError as exc:
            self.add_error("file", str(exc))
        return cleaned
