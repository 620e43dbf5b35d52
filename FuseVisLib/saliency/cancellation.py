"""Progress bars and cancellation for the long (per-pixel and per-probe) computations."""
from __future__ import annotations

import threading
from typing import Callable, Union

from tqdm import tqdm

from ..errors import FuseVisError

CancelCheck = Union[Callable[[], bool], threading.Event, None]


class SaliencyCancelled(FuseVisError):
    """The caller cancelled a saliency computation; nothing was returned."""


def is_cancelled(cancel: CancelCheck) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def raise_if_cancelled(cancel: CancelCheck, what: str) -> None:
    if is_cancelled(cancel):
        raise SaliencyCancelled(f"{what} was cancelled; run it again to get the result")


def progress_bar(total: int, description: str, enabled: bool, unit: str) -> tqdm:
    """A tqdm bar (to stderr) for ``total`` units of work; silent when ``enabled`` is False."""
    return tqdm(total=total, desc=description, disable=not enabled, leave=False, unit=unit)
