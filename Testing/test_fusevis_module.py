"""The Slicer module without the Slicer application: its .ui, its Python file, its self-test, its CMake files.

The desktop app is not available here, so the Widget cannot run; instead
every ``self.ui.<name>`` the Widget uses must be a widget the .ui file
defines, ``FuseVis.py`` must compile and give its Logic without Qt, and the
workflow the Test class runs inside Slicer runs here on a plain MRML scene.
"""
from __future__ import annotations

import ast
import importlib.util
import py_compile
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULE_DIR = REPO / "FuseVis"
MODULE_FILE = MODULE_DIR / "FuseVis.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "FuseVis.ui"
sys.path.insert(0, str(MODULE_DIR))


def ui_widget_names() -> set[str]:
    root = ElementTree.parse(UI_FILE).getroot()
    return {element.get("name") for element in root.iter("widget")}


def widget_ui_references() -> dict[str, int]:
    """Every ``self.ui.<name>`` in FuseVisWidget, with the line it first appears on."""
    tree = ast.parse(MODULE_FILE.read_text(), filename=str(MODULE_FILE))
    widget = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "FuseVisWidget")
    found: dict[str, int] = {}
    for node in ast.walk(widget):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            found.setdefault(node.attr, node.lineno)
    return found


def test_widget_uses_only_widgets_the_ui_file_defines():
    defined = ui_widget_names()
    used = widget_ui_references()
    assert len(used) > 10, "the Widget should map its controls through self.ui"
    undefined = {name: line for name, line in used.items() if name not in defined}
    assert not undefined, f"FuseVis.py uses widgets FuseVis.ui does not define: {undefined}"
    root = ElementTree.parse(UI_FILE).getroot()
    assert root.findtext("class") == "FuseVis" and root.find("widget").get("class") == "qMRMLWidget"


def test_every_connected_signal_names_a_widget_of_the_ui():
    defined = ui_widget_names()
    source = MODULE_FILE.read_text()
    connected = set(re.findall(r"self\.ui\.(\w+)\.connect\(", source))
    assert connected and connected <= defined


def test_fusevis_py_compiles_and_gives_its_logic_without_qt():
    py_compile.compile(str(MODULE_FILE), doraise=True)
    assert importlib.util.find_spec("qt") is None, "this check is meant to run where Qt (PythonQt) is absent"
    spec = importlib.util.spec_from_file_location("FuseVis", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.IN_SLICER_APP is False
    import slicer

    from FuseVisLib import method_names
    from FuseVisMRML import FuseVisLogic

    assert module.FuseVisLogic is FuseVisLogic
    logic = module.FuseVisLogic(slicer.vtkMRMLScene())
    assert logic.parameters.method in method_names()
    assert "qt" not in sys.modules
    assert module.missing_requirements() == [], "every listed requirement is installed here, so none may be missing"


def test_cmake_files_describe_the_extension_and_list_existing_files():
    top = (REPO / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_CATEGORY"):
        assert re.search(rf"set\({key} \"[^\"]+\"\)", top), key
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in top and "add_subdirectory(FuseVis)" in top
    module = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert "slicerMacroBuildScriptedModule" in module and "WITH_GENERIC_TESTS" in module
    for resource in ("Resources/Icons/${MODULE_NAME}.png", "Resources/UI/${MODULE_NAME}.ui", "Resources/python-dependencies.txt"):
        assert resource in module
        assert (MODULE_DIR / resource.replace("${MODULE_NAME}", "FuseVis")).is_file(), resource
    from PIL import Image

    with Image.open(MODULE_DIR / "Resources" / "Icons" / "FuseVis.png") as icon:
        assert icon.size[0] == icon.size[1] >= 64


@pytest.mark.slow
def test_the_test_class_workflow_runs_on_a_plain_mrml_scene(tmp_path):
    slicer = pytest.importorskip("slicer")
    from FuseVisMRML.self_test import run_workflow

    scene = slicer.vtkMRMLScene()
    reloaded = run_workflow(scene, tmp_path, method="WeightedAveraging", misaligned=False, resolution=3.0, log=lambda _: None)
    assert reloaded.parameters.fusedVolume is not None
