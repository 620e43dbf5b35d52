"""Seconds spent per stage of a case (load, register, fuse, guidance, jacobians, ...), and the stage running now."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator


class StageClock:
    """Accumulates wall-clock seconds per stage name; ``current`` names the stage a failure happened in."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        previous, self.current = self.current, name
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        # Left in place when the stage raised, so the failure can name it.
        self.current = previous

    def record(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.seconds.items()}
