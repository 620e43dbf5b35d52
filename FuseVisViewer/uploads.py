"""Files uploaded through the page, saved on the server where the loaders can read them.

One file (a NIfTI image) is saved as itself; several files are taken as
the slices of one DICOM series and saved together in a folder, which is
what the DICOM reader expects. Each upload gets a fresh folder, so a new
upload never mixes with an older one.
"""
from __future__ import annotations

import time
from pathlib import Path

from trame.app.file_upload import ClientFile

from FuseVisLib.errors import FuseVisError


def save_uploads(files: list[dict] | None, upload_dir: Path, role: str) -> Path:
    """Write the uploaded ``files`` under ``upload_dir``; returns the file (one) or the folder (several)."""
    uploads = [ClientFile(item) for item in (files or [])]
    uploads = [upload for upload in uploads if not upload.is_empty]
    if not uploads:
        raise FuseVisError(f"no {role.upper()} file arrived; choose the file(s) again")
    folder = Path(upload_dir) / f"{role}-{time.strftime('%Y%m%d-%H%M%S')}-{time.perf_counter_ns() % 1_000_000}"
    folder.mkdir(parents=True, exist_ok=False)
    paths = []
    for upload in uploads:
        name = Path(upload.name or "upload").name  # never a path from the browser
        target = folder / name
        target.write_bytes(upload.content)
        paths.append(target)
    return paths[0] if len(paths) == 1 else folder
