"""Many cases in one run: a progress bar over cases, resumption, and failures that do not stop the others.

Resumption: a case's completion marker is written last, after its summary
and report, and records what the case was analysed with (settings, methods
and their weights files, input files' sizes and times). A re-run skips a
case whose marker matches and redoes one whose marker is missing (the run
was interrupted, or the case failed) or differs.

A failing case leaves ``summary.json`` with status "failed", the stage and
the reason (and ``error.txt`` with the traceback when the error was not a
FuseVisError); the other cases go on. Ctrl-C stops the whole run.
"""
from __future__ import annotations

import json
import traceback
from pathlib import Path

from tqdm import tqdm

from ..errors import FuseVisError
from .case_outputs import folder_name
from .cases import CaseInput
from .method_selection import MethodSelection
from .report_html import write_index
from .run_case import REPORT_FILE, SUMMARY_FILE, analyze_case, stage_seconds, write_summary
from .settings import AnalysisSettings
from .stage_clock import StageClock

MARKER_FILE = ".analysis-complete.json"
INDEX_FILE = "index.html"
ERROR_FILE = "error.txt"


def run_analysis(cases: list[CaseInput], selection: MethodSelection, settings: AnalysisSettings, out: Path, nested: bool = True) -> dict:
    """Analyse ``cases`` into ``out/<case>/`` (``nested``) or, for a single case, into ``out`` itself.

    Returns the run summary (also written to ``out/summary.json`` with an
    ``index.html`` when ``nested``): per case its status ("done",
    "resumed" or "failed"), folder, report and, for failures, stage and reason.
    """
    if not nested and len(cases) != 1:
        raise FuseVisError("only a single case can be written straight into --out; give --cases for several")
    folders = {case.name: out / folder_name(case.name) if nested else out for case in cases}
    clashes = sorted(name for name in folders if list(folders.values()).count(folders[name]) > 1)
    if clashes:
        raise FuseVisError(f"cases {', '.join(clashes)} would share one output folder; rename them so their names differ")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    with tqdm(cases, desc="cases", unit="case", disable=not settings.progress) as bar:
        for case in bar:
            bar.set_postfix_str(case.name)
            entries.append(_run_one(case, folders[case.name], out, selection, settings))
    run = {
        "out": str(out),
        "methods": list(selection.models),
        "skipped_methods": selection.skipped,
        "settings": settings.record(),
        "cases": entries,
        "counts": {status: sum(entry["status"] == status for entry in entries) for status in ("done", "resumed", "failed")},
    }
    if nested:
        (out / SUMMARY_FILE).write_text(json.dumps(run, indent=2) + "\n")
        write_index(run, out / INDEX_FILE)
    return run


def _run_one(case: CaseInput, folder: Path, out: Path, selection: MethodSelection, settings: AnalysisSettings) -> dict:
    entry = {"case": case.name, "folder": _relative(folder, out)}
    marker = folder / MARKER_FILE
    fingerprint = _fingerprint(case, selection, settings)
    if _finished(marker, fingerprint):
        return {**entry, "status": "resumed", **_links(folder, out)}
    marker.unlink(missing_ok=True)
    clock = StageClock()
    try:
        analyze_case(case, selection, settings, folder, clock)
    except Exception as error:  # noqa: BLE001 - one case's failure, whatever it is, must not stop the others
        return {**entry, **_record_failure(case, folder, out, error, clock)}
    (folder / ERROR_FILE).unlink(missing_ok=True)
    marker.write_text(json.dumps(fingerprint) + "\n")
    return {**entry, "status": "done", **_links(folder, out)}


def _record_failure(case: CaseInput, folder: Path, out: Path, error: Exception, clock: StageClock) -> dict:
    expected = isinstance(error, FuseVisError)
    reason = str(error) if expected else f"unexpected {type(error).__name__}: {error}"
    stage = clock.current or "load"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_FILE).unlink(missing_ok=True)  # a report from an earlier run would describe other inputs
    if expected:
        (folder / ERROR_FILE).unlink(missing_ok=True)
    else:
        (folder / ERROR_FILE).write_text("".join(traceback.format_exception(error)))
    record = {
        "case": case.name,
        "status": "failed",
        "stage": stage,
        "reason": reason,
        "inputs": {"mri": str(case.mri), "pet": str(case.pet)},
        "timing_s": stage_seconds(clock),
    }
    write_summary(record, folder)
    return {"status": "failed", "stage": stage, "reason": reason, "summary": _relative(folder / SUMMARY_FILE, out)}


def _links(folder: Path, out: Path) -> dict:
    return {"summary": _relative(folder / SUMMARY_FILE, out), "report": _relative(folder / REPORT_FILE, out)}


def _relative(path: Path, out: Path) -> str:
    return str(path.relative_to(out))


def _finished(marker: Path, fingerprint: dict) -> bool:
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == json.loads(json.dumps(fingerprint))
    except (OSError, ValueError):
        return False


def _fingerprint(case: CaseInput, selection: MethodSelection, settings: AnalysisSettings) -> dict:
    return {
        "settings": settings.record(),
        "methods": selection.fingerprint(),
        "inputs": [_stamp(path) for path in (case.mri, case.pet)],
    }


def _stamp(path: Path | None) -> list | None:
    """Path, size and modification time of an input (for a DICOM folder: of its newest file, and the file count)."""
    if path is None or not path.exists():
        return None
    if path.is_dir():
        files = [entry.stat() for entry in path.rglob("*") if entry.is_file()]
        return [str(path), len(files), max((stat.st_mtime_ns for stat in files), default=0)]
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]
