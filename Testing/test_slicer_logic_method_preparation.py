"""Preparing a method off the host's thread, as the Slicer module's timer does it (MethodPreparation), on a real MRML scene.

The Widget itself needs the Slicer application; what it relies on runs
here: the slow part on a thread of its own while the Logic says it is busy,
the end on the polling thread, a failure reported without leaving the Logic
busy.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "FuseVis"))

slicer = pytest.importorskip("slicer")

from FuseVisLib import networks, register_method, registry  # noqa: E402
from FuseVisLib.errors import FuseVisError  # noqa: E402
from FuseVisMRML import FuseVisLogic, MethodPreparation, NetworkCache  # noqa: E402

import viewer_network  # noqa: E402  (Testing/ is on sys.path under pytest)

HOLD_SECONDS = 60


@pytest.fixture
def logic(monkeypatch):
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))  # test methods stay in this test
    logic = FuseVisLogic(slicer.vtkMRMLScene(), networks=NetworkCache())
    yield logic
    logic.close()


def ended(preparation: MethodPreparation) -> MethodPreparation:
    deadline = time.monotonic() + HOLD_SECONDS
    while not preparation.poll():
        assert time.monotonic() < deadline, "the preparation did not end"
        time.sleep(0.01)
    return preparation


def test_the_network_is_prepared_on_its_own_thread_and_ended_by_the_polling_one(logic, monkeypatch):
    viewer_network.register()
    method = viewer_network.NAME
    # The real preparation, held open until the test has looked at the busy Logic: timing cannot decide.
    release = threading.Event()
    worked_on: list[int] = []
    begin = logic.begin_preparing_method

    def held_open(name: str):
        work = begin(name)

        def run() -> None:
            worked_on.append(threading.get_ident())
            assert release.wait(timeout=HOLD_SECONDS)
            work()

        return None if work is None else run

    monkeypatch.setattr(logic, "begin_preparing_method", held_open)
    preparation = MethodPreparation(logic, method)
    assert not preparation.poll()
    assert logic.busy is not None and method in logic.busy
    assert not logic.method_ready(method)
    with pytest.raises(FuseVisError, match="Preparing"):
        MethodPreparation(logic, method)  # one preparation at a time
    release.set()
    ended(preparation)
    assert worked_on and worked_on[0] != threading.get_ident()
    assert preparation.error is None
    assert logic.busy is None
    assert logic.method_ready(method)
    assert MethodPreparation(logic, method).poll()  # ready: nothing runs, nothing to end


def test_a_failed_preparation_is_reported_and_leaves_the_logic_free(logic, tmp_path):
    missing = tmp_path / "not-there.safetensors"
    register_method("FuseVisTestNoWeights", networks.FunFuseAn, networks.FunFuseAn.receptive_radius["pet"], missing)
    preparation = ended(MethodPreparation(logic, "FuseVisTestNoWeights"))
    assert isinstance(preparation.error, FuseVisError)
    assert "not-there.safetensors" in str(preparation.error)
    assert logic.busy is None
    assert not logic.method_ready("FuseVisTestNoWeights")
    viewer_network.register()
    assert ended(MethodPreparation(logic, viewer_network.NAME)).error is None  # the Logic takes the next one


def test_an_unknown_method_is_refused_on_the_calling_thread(logic):
    with pytest.raises(FuseVisError, match="NoSuchMethod"):
        MethodPreparation(logic, "NoSuchMethod")
    assert logic.busy is None
