"""Driving the viewer in a real browser: Debian's chromium through Playwright (tests and the benchmark).

:class:`ViewerProcess` runs ``fusevis serve`` in a subprocess and waits
for the address it prints; :class:`ViewerPage` wraps a Playwright page of
it: where each slice view is on screen, the readout, waiting for the
views and the principal pixel to update. No browser is downloaded: the
system's chromium (``apt-get install chromium``) is used, or nothing.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The views keep streaming while the page is not focused.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]
ADDRESS_LINE = re.compile(r"open (http://\S+) in a browser")


def chromium_path() -> str | None:
    """Debian's chromium binary, or None when it is not installed."""
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    return found


class ViewerProcess:
    """``fusevis serve ARGS`` in a subprocess; ``url`` once it listens. Output goes to ``log_path``.

    ``script``: a Python script to run instead of ``fusevis serve`` (one
    that registers a method first, then runs the serve command with ARGS).
    """

    def __init__(self, args: list[str], log_path: Path, cwd: Path | None = None, script: Path | None = None) -> None:
        self.args = args
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.script = script
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self._lines: list[str] = []

    def start(self, timeout: float = 180.0) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        entry = [str(self.script)] if self.script is not None else ["-m", "FuseVisLib", "serve"]
        command = [sys.executable, *entry, *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.cwd, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        found = threading.Event()
        log = self.log_path.open("w")

        def pump() -> None:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self._lines.append(line)
                match = ADDRESS_LINE.search(line)
                if match and self.url is None:
                    self.url = match.group(1)
                    found.set()
            log.close()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"the viewer did not start within {timeout:.0f} s; see {self.log_path}")
        return self.url

    def wait_for_output(self, text: str, timeout: float = 120.0) -> None:
        """Until the server printed ``text`` (RuntimeError after ``timeout`` s or if it exited)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if not self.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the viewer did not print {text!r}; see {self.log_path}")
            time.sleep(0.2)

    def output(self) -> str:
        return "".join(self._lines)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def launch_chromium(playwright):
    """The system chromium, headless, without network extras; RuntimeError if it is not installed."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    return await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


class ViewerPage:
    """A Playwright page showing the viewer."""

    def __init__(self, page) -> None:
        self.page = page

    async def open(self, url: str, timeout: float = 120.0) -> None:
        await self.page.goto(url)
        await self.wait_until_ready(timeout)

    async def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Until a pair is loaded, the slice in view fused and every view has drawn an image."""
        deadline = time.monotonic() + timeout
        await self.page.wait_for_function("() => window.trame?.state?.get?.('fv_ready') === true", timeout=timeout * 1000)
        await self.page.wait_for_function("() => window.trame.state.get('fv_fused_done') > 0", timeout=max(deadline - time.monotonic(), 1) * 1000)
        for name in ("MRI", "Fused", "PET", "Zoom"):
            await self.page.wait_for_function(
                "(name) => { const img = document.querySelector(`#fusevis-view-${name} img`);"
                " return !!img && img.naturalWidth > 0; }",
                arg=name, timeout=max(deadline - time.monotonic(), 1) * 1000,
            )

    async def state(self, key: str):
        return await self.page.evaluate("(key) => window.trame.state.get(key)", key)

    async def set_state(self, key: str, value) -> None:
        await self.page.evaluate("([key, value]) => window.trame.state.set(key, value)", [key, value])

    async def view_box(self, name: str) -> dict:
        """Screen rectangle of a slice view's image."""
        box = await self.page.locator(f"#fusevis-view-{name} img").first.bounding_box()
        if box is None:
            raise RuntimeError(f"the {name} view is not on screen")
        return box

    async def readout(self) -> dict[str, dict]:
        """The readout table: key -> {"text", "exact"}."""
        return await self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('#fusevis-readout tr[data-field]')].map(row =>"
            " [row.dataset.field, {text: row.cells[1].textContent.trim(), exact: row.cells[1].dataset.exact || ''}]))"
        )

    async def readout_seq(self) -> int:
        return int(await self.state("fv_readout_seq") or 0)

    async def hover(self, view: str, fx: float, fy: float) -> tuple[float, float]:
        """Move the mouse to the fraction (fx, fy) of a view's width and height; returns the screen point."""
        box = await self.view_box(view)
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        await self.page.mouse.move(x, y)
        return x, y

    async def wait_for_readout_after(self, seq: int, timeout: float = 60.0) -> dict[str, dict]:
        """The readout once the principal pixel changed after sequence number ``seq``."""
        await self.page.wait_for_function("(seq) => window.trame.state.get('fv_readout_seq') > seq", arg=seq, timeout=timeout * 1000)
        await asyncio.sleep(0.1)  # the table re-renders after the state arrives
        return await self.readout()

    async def error_text(self) -> str:
        locator = self.page.locator("#fusevis-error")
        return (await locator.inner_text()).strip() if await locator.count() else ""

    async def wait_for_error(self, timeout: float = 60.0) -> str:
        await self.page.wait_for_selector("#fusevis-error", timeout=timeout * 1000)
        return await self.error_text()
