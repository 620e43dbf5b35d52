"""report.html: one self-contained page per case (figure sheets embedded as base64 PNG), built from summary.json.

The page shows exactly the numbers of summary.json, so both always agree.
An index page for a folder of cases links the reports and lists failures.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from .metrics import DOMINANCE_SHARE

SHEET_TITLES = {
    "fused": "Fused images (Figure 4)",
    "guidance": "Guidance images (Figure 5)",
    "guidance_rgb": "Guidance RGB images (Figure 6)",
    "jacobians": "Jacobian images (Figure 7)",
    "scatter": "Scatterplots (Figure 8)",
}
LOSS_COLUMNS = ("ssim_loss_mri", "ssim_loss_pet", "l2_loss_mri", "l2_loss_pet")
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1600px; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, table.info td { text-align: left; }
th { background: #eee; }
.warning { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 0.8em; margin: 0.5em 0; }
.failed { color: #a00; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def number(value, digits: int = 4) -> str:
    """How the report prints a number: ``digits`` significant digits; an en dash for None."""
    if value is None:
        return "&ndash;"
    return f"{value:.{digits}g}"


def write_report(summary: dict, folder: Path, path: Path) -> Path:
    """Write the report of one analysed case; images are read from ``folder`` and embedded."""
    parts = [f"<h1>FuseVis analysis: {_text(summary['case'])}</h1>", _overview(summary), _warnings(summary)]
    parts += [_pixels(summary), _quality(summary)]
    parts += [_pixel_table(summary, record) for record in summary["pixels"]]
    for name, relative in summary["files"]["figures"].items():
        parts.append(f"<h2>{_text(SHEET_TITLES.get(name, name))}</h2>\n{_embedded(folder / relative, name)}")
    parts.append(_timing(summary))
    path.write_text(_page(f"FuseVis analysis: {summary['case']}", "\n".join(part for part in parts if part)))
    return path


def write_index(run: dict, path: Path) -> Path:
    """A page linking every case's report, with the failures and their reasons."""
    rows = []
    for case in run["cases"]:
        name = _text(case["case"])
        link = f'<a href="{html.escape(case["report"], quote=True)}">{name}</a>' if case.get("report") else name
        status = case["status"]
        css = ' class="failed"' if status == "failed" else ""
        rows.append(f"<tr><td>{link}</td><td{css}>{_text(status)}</td><td>{_text(case.get('reason') or '')}</td></tr>")
    body = [
        "<h1>FuseVis analysis</h1>",
        f"<p>{run['counts']['done']} analysed, {run['counts']['resumed']} already complete, {run['counts']['failed']} failed; "
        f"methods: {_text(', '.join(run['methods']))}.</p>",
        _skipped(run["skipped_methods"]),
        "<table><tr><th>case</th><th>status</th><th>reason</th></tr>" + "".join(rows) + "</table>",
    ]
    path.write_text(_page("FuseVis analysis", "\n".join(part for part in body if part)))
    return path


def _overview(summary: dict) -> str:
    size = summary["size"]
    rows = [
        ("MRI", _text(summary["inputs"]["mri"])),
        ("PET", _text(summary["inputs"]["pet"])),
        ("input", f"{summary['kind']}, {size['slices']} slice(s) of {size['cols']}x{size['rows']} pixels"),
    ]
    if summary["kind"] == "volume":
        first, last = summary["analysed_slices"]
        rows.append(("analysed axial slices", f"{first}..{last} (array axis {summary['axial_axis']})"))
        registration = summary.get("registration")
        rows.append(
            (
                "registration",
                "none (PET resampled onto the MRI grid in scanner coordinates)"
                if registration is None
                else f"rotation {registration['rotation_deg']:.2f} deg, translation {_text(registration['translation_mm'])} mm",
            )
        )
    settings = summary["settings"]
    rows.append(
        (
            "display",
            f"gamma1 (Jacobian) {settings['gamma_jacobian']:g}, gamma2 (guidance) {settings['gamma_guidance']:g}, "
            f"neighbourhood half-width {settings['neighbourhood']} px",
        )
    )
    return '<table class="info">' + "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows) + "</table>"


def _warnings(summary: dict) -> str:
    notes = "".join(f'<div class="warning">{_text(note)}</div>' for note in summary["notes"])
    return notes + _skipped(summary["skipped_methods"])


def _skipped(skipped: dict[str, str]) -> str:
    return "".join(f'<div class="warning">Method {_text(name)} skipped: {_text(reason)}</div>' for name, reason in skipped.items())


def _pixels(summary: dict) -> str:
    volume = summary["kind"] == "volume"
    header = "<tr><th>pixel</th><th>kind</th><th>chosen</th>" + ("<th>slice</th>" if volume else "")
    header += "<th>row</th><th>col</th><th>MRI</th><th>PET</th></tr>"
    rows = []
    for record in summary["pixels"]:
        cells = [record["pixel"], _text(record["label"]), record["source"]]
        cells += [str(record["slice"])] if volume else []
        cells += [str(record["row"]), str(record["col"]), number(record["mri"], 3), number(record["pet"], 3)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    rule = summary.get("pixel_rule")
    explained = ""
    if rule:
        items = "".join(f"<li><b>{_text(key)}</b>: {_text(value)}</li>" for key, value in rule.items())
        explained = f"<details><summary>How the pixels were found (paper section 5.3)</summary><ul>{items}</ul></details>"
    half = summary["settings"]["neighbourhood"]
    note = (
        f"<p>Neighbourhood: the {2 * half + 1}x{2 * half + 1} square around the pixel (the zoomed region). Shares are of the "
        "absolute Jacobian mass over the whole slice; the PET share of influence compares the absolute mass of both "
        f"modalities in the neighbourhood: PET dominates at {DOMINANCE_SHARE:g} or more, MRI at {1 - DOMINANCE_SHARE:g} or less.</p>"
    )
    return f"<h2>Principal pixels</h2><table>{header}{''.join(rows)}</table>{explained}{note}"


def _quality(summary: dict) -> str:
    header = "<tr><th>method</th><th>SSIM with MRI</th><th>SSIM with PET</th>"
    header += "".join(f"<th>{name}</th>" for name in LOSS_COLUMNS) + "</tr>"
    rows = []
    for name, record in summary["methods"].items():
        cells = [_text(name), number(record["ssim"]["mri"]), number(record["ssim"]["pet"])]
        cells += [number(record["partial_losses"][column]) for column in LOSS_COLUMNS]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (
        "<h2>Fusion quality (partial losses of equation 4)</h2>"
        f"<table>{header}{''.join(rows)}</table>"
    )


def _pixel_table(summary: dict, pixel: dict) -> str:
    place = f"slice {pixel['slice']}, " if "slice" in pixel else ""
    title = f"{pixel['pixel']}: {_text(pixel['label'])} ({place}row {pixel['row']}, col {pixel['col']})"
    header = (
        "<tr><th>method</th><th>Jacobian MRI at pixel</th><th>Jacobian PET at pixel</th>"
        "<th>share in neighbourhood, MRI</th><th>share in neighbourhood, PET</th>"
        "<th>share at pixel, MRI</th><th>share at pixel, PET</th><th>PET share of influence</th><th>dominant</th></tr>"
    )
    rows = []
    for name, record in summary["methods"].items():
        readout = next(entry for entry in record["pixels"] if entry["pixel"] == pixel["pixel"])
        cells = [
            _text(name),
            number(readout["value"]["mri"]),
            number(readout["value"]["pet"]),
            number(readout["neighbourhood_share"]["mri"], 3),
            number(readout["neighbourhood_share"]["pet"], 3),
            number(readout["pixel_share"]["mri"], 3),
            number(readout["pixel_share"]["pet"], 3),
            number(readout["pet_share"], 3),
            readout["dominant"],
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<h2>{title}</h2><table>{header}{''.join(rows)}</table>"


def _timing(summary: dict) -> str:
    stages = list(summary["timing_s"])
    header = "<tr><th></th>" + "".join(f"<th>{_text(stage)}</th>" for stage in stages) + "</tr>"
    rows = ["<tr><td>case</td>" + "".join(f"<td>{summary['timing_s'][stage]:.2f}</td>" for stage in stages) + "</tr>"]
    for name, record in summary["methods"].items():
        cells = "".join(f"<td>{record['timing_s'][stage]:.2f}</td>" if stage in record["timing_s"] else "<td></td>" for stage in stages)
        rows.append(f"<tr><td>{_text(name)}</td>{cells}</tr>")
    paths = "".join(
        f"<li>{_text(name)}: Jacobian by the {record['saliency_path']['jacobian']} path, guidance by the "
        f"{record['saliency_path']['guidance']} path ({_text(record['saliency_path']['reason'])})</li>"
        for name, record in summary["methods"].items()
    )
    return f"<h2>Timing (seconds)</h2><table>{header}{''.join(rows)}</table><details><summary>Saliency paths</summary><ul>{paths}</ul></details>"


def _embedded(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_text(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _text(value) -> str:
    return html.escape(str(value))
