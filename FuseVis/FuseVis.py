"""FuseVis: explainable MRI-PET image fusion in 3D Slicer (Module, Widget, Logic and Test).

The Logic is ``FuseVisMRML.FuseVisLogic``: plain MRML, no Qt, so the browser
viewer and scripts use the very same class. This file adds what only the
Slicer application has: the module panel (the Widget maps GUI to the
parameter node and drives the Logic's small steps from a timer), the
dependency installer, and the self-test. It compiles, and ``FuseVisLogic``
imports from it, without Qt.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile

try:
    import qt
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )

    IN_SLICER_APP = True
except ImportError:
    # The PyPI ``slicer`` package has MRML but neither Qt nor these bases; only the Logic is usable then.

    class _SlicerAppOnly:
        """Stands in for Slicer's scripted-module base classes where the application is absent."""

        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError(f"{type(self).__name__} runs inside the 3D Slicer application only; use FuseVisLogic elsewhere")

    ScriptedLoadableModule = ScriptedLoadableModuleWidget = ScriptedLoadableModuleTest = _SlicerAppOnly
    IN_SLICER_APP = False

import slicer
import vtk
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS_FILE = os.path.join(MODULE_DIR, "Resources", "python-dependencies.txt")
TORCH_REQUIREMENT = ">=2.1"
# While a method is prepared on its own thread the timer only checks on it; polling at 0 ms would
# keep the GUI thread spinning against the preparation.
PREPARATION_POLL_MS = 50


def _make_core_importable() -> None:
    """Installed extensions carry FuseVisLib beside this file; a source checkout has it one folder up."""
    if importlib.util.find_spec("FuseVisLib") is None:
        checkout_root = os.path.dirname(MODULE_DIR)
        if os.path.isdir(os.path.join(checkout_root, "FuseVisLib")):
            sys.path.append(checkout_root)
    if MODULE_DIR not in sys.path:
        sys.path.append(MODULE_DIR)


_make_core_importable()


def __getattr__(name: str):
    # The Logic is imported on first use: it needs torch, which may not be installed yet when Slicer loads the module.
    if name == "FuseVisLogic":
        from FuseVisMRML import FuseVisLogic

        return FuseVisLogic
    raise AttributeError(name)


def missing_requirements() -> list[str]:
    """pip requirements (from Resources/python-dependencies.txt) whose packages cannot be imported."""
    missing = []
    with open(REQUIREMENTS_FILE, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            import_name, requirement = line.split(maxsplit=1)
            if importlib.util.find_spec(import_name) is None:
                missing.append(requirement)
    return missing


def ensure_dependencies(ask: bool = True) -> bool:
    """Install what FuseVis needs, once, with the user's consent: torch through the PyTorch extension, the rest with pip.

    Returns True when everything is importable afterwards. Inside Slicer only.
    """
    torch_missing = importlib.util.find_spec("torch") is None
    missing = missing_requirements()
    if not torch_missing and not missing:
        return True
    wanted = (["PyTorch (through the PyTorch extension)"] if torch_missing else []) + missing
    if ask and not slicer.util.confirmOkCancelDisplay(
        "FuseVis needs these Python packages, which will be downloaded and installed now (this can take minutes):\n\n"
        + "\n".join(wanted),
        "FuseVis: install dependencies",
    ):
        return False
    if torch_missing:
        try:
            import PyTorchUtils
        except ImportError:
            slicer.util.errorDisplay("FuseVis needs the PyTorch extension: install it from the Extensions Manager and restart Slicer.")
            return False
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT) is None:
            return False
    if missing:
        slicer.util.pip_install(" ".join(missing))
    return importlib.util.find_spec("torch") is not None and not missing_requirements()


#
# FuseVis
#


class FuseVis(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "FuseVis"
        self.parent.categories = ["Explainable AI"]
        self.parent.dependencies = []
        self.parent.contributors = ["FuseVis contributors"]
        self.parent.helpText = (
            "Co-register an MRI and a PET volume, fuse every axial slice with a neural network (or weighted averaging), "
            "and inspect the fusion: guidance images, the guidance RGB image, and the Jacobian images of the pixel under "
            "the mouse, with a scatterplot of guidance MRI vs PET."
        )
        self.parent.acknowledgementText = (
            "Method: Kumar et al., FuseVis: Interpreting neural networks for image fusion using per-pixel saliency "
            "visualization (Computers, 2020)."
        )


#
# FuseVisWidget
#


class FuseVisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: GUI <-> parameter node, and a timer that takes the Logic's steps."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._updatingGUI = False
        self._timer = None
        self._preparation = None  # FuseVisMRML.MethodPreparation running on its own thread
        self._afterPreparation = None  # what to do on the GUI thread once it has succeeded
        self._failedMethod = None  # not prepared again until the user asks (Fuse)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/FuseVis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self._timer = qt.QTimer()
        self._timer.setInterval(0)
        self._timer.connect("timeout()", self.onTimer)

        self.ui.mriSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        self.ui.petSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        self.ui.alreadyRegisteredCheckBox.connect("toggled(bool)", self.updateParameterNodeFromGUI)
        self.ui.methodComboBox.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        self.ui.gamma1SliderWidget.connect("valueChanged(double)", self.updateParameterNodeFromGUI)
        self.ui.gamma2SliderWidget.connect("valueChanged(double)", self.updateParameterNodeFromGUI)
        self.ui.neighbourhoodSpinBox.connect("valueChanged(int)", self.updateParameterNodeFromGUI)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        self.ui.batchSizeSpinBox.connect("valueChanged(int)", self.updateParameterNodeFromGUI)

        self.ui.loadButton.connect("clicked(bool)", self.onLoadButton)
        self.ui.demoButton.connect("clicked(bool)", self.onDemoButton)
        self.ui.registerButton.connect("clicked(bool)", self.onRegisterButton)
        self.ui.fuseButton.connect("clicked(bool)", self.onFuseButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.saveSceneButton.connect("clicked(bool)", self.onSaveSceneButton)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def cleanup(self) -> None:
        self.dropPreparation()
        self.onCancelButton()
        self.removeObservers()
        if self.logic is not None:
            self.logic.close()

    def enter(self) -> None:
        self.initializeLogic()

    def onSceneStartClose(self, caller, event) -> None:
        self.onCancelButton()
        if self.logic is not None:
            self.removeObserver(self.logic.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
            self.logic.close()
            self.logic = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeLogic()

    def initializeLogic(self) -> bool:
        """Install dependencies if needed (asking first), then make the Logic for the application's scene."""
        if self.logic is not None:
            return True
        if not ensure_dependencies(ask=True):
            self.ui.statusLabel.text = "FuseVis needs PyTorch and a few Python packages; open the module again to install them."
            return False
        import FuseVisLib
        from FuseVisMRML import FuseVisLogic

        self.logic = FuseVisLogic(slicer.mrmlScene)
        self.logic.cursor_listener = self.scheduleStep
        self.logic.error_listener = self.showError
        crosshair = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        if crosshair is not None:
            self.logic.observe_crosshair(crosshair)
        self._updatingGUI = True
        self.ui.methodComboBox.clear()
        self.ui.methodComboBox.addItems(FuseVisLib.method_names())
        self._updatingGUI = False
        self.addObserver(self.logic.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()
        return True

    def updateGUIFromParameterNode(self, caller=None, event=None) -> None:
        if self.logic is None or self._updatingGUI:
            return
        params = self.logic.parameters
        self._updatingGUI = True
        try:
            self.ui.mriSelector.setCurrentNode(params.mriVolume)
            self.ui.petSelector.setCurrentNode(params.petVolume)
            self.ui.alreadyRegisteredCheckBox.checked = params.alreadyRegistered
            self.ui.methodComboBox.currentText = params.method
            self.ui.gamma1SliderWidget.value = params.gamma1
            self.ui.gamma2SliderWidget.value = params.gamma2
            self.ui.neighbourhoodSpinBox.value = params.neighbourhoodSize
            self.ui.deviceComboBox.currentText = params.device
            self.ui.batchSizeSpinBox.value = params.batchSize
            ready = params.mriVolume is not None and params.petVolume is not None
            self.ui.registerButton.enabled = ready and not params.alreadyRegistered
            self.ui.fuseButton.enabled = ready
        finally:
            self._updatingGUI = False

    def updateParameterNodeFromGUI(self, *_args) -> None:
        if self.logic is None or self._updatingGUI:
            return
        params = self.logic.parameters
        was = params.node.StartModify()
        try:
            params.mriVolume = self.ui.mriSelector.currentNode()
            params.petVolume = self.ui.petSelector.currentNode()
            params.alreadyRegistered = self.ui.alreadyRegisteredCheckBox.checked
            if self.ui.methodComboBox.currentText:
                params.method = self.ui.methodComboBox.currentText
            params.gamma1 = round(self.ui.gamma1SliderWidget.value, 3)
            params.gamma2 = round(self.ui.gamma2SliderWidget.value, 3)
            size = int(self.ui.neighbourhoodSpinBox.value)
            params.neighbourhoodSize = size if size % 2 else size + 1
            params.device = self.ui.deviceComboBox.currentText
            params.batchSize = int(self.ui.batchSizeSpinBox.value)
        finally:
            params.node.EndModify(was)
        self.scheduleStep()

    # -- actions -------------------------------------------------------------------------------

    def onLoadButton(self) -> None:
        if not self.initializeLogic():
            return
        with slicer.util.tryWithErrorDisplay("FuseVis could not load the volumes.", waitCursor=True):
            mri, pet = self.logic.load_inputs(self.ui.mriPathLineEdit.currentPath, self.ui.petPathLineEdit.currentPath)
            self.showPair(mri, pet)

    def onDemoButton(self) -> None:
        if not self.initializeLogic():
            return
        from FuseVisLib.demo_data import build_demo

        with slicer.util.tryWithErrorDisplay("FuseVis could not build the demo data.", waitCursor=True):
            files = build_demo(os.path.join(slicer.app.temporaryPath, "FuseVisDemo"), misalign=True)
            self.ui.mriPathLineEdit.currentPath = str(files.mri)
            self.ui.petPathLineEdit.currentPath = str(files.pet)
            mri, pet = self.logic.load_inputs(files.mri, files.pet)
            self.showPair(mri, pet)

    def showPair(self, mri, pet) -> None:
        """The PET over the MRI in every slice view, each turned to the MRI's own slice planes (see view_alignment)."""
        from FuseVisMRML.view_alignment import align_with_volume

        layout = slicer.app.layoutManager()
        align_with_volume([layout.sliceWidget(name).mrmlSliceNode() for name in layout.sliceViewNames()], mri)
        slicer.util.setSliceViewerLayers(background=mri, foreground=pet, foregroundOpacity=0.4, fit=True)

    def onRegisterButton(self) -> None:
        if not self.initializeLogic():
            return
        from FuseVisLib.registration import RegistrationCancelled

        dialog = slicer.util.createProgressDialog(labelText="Registering PET to MRI...", maximum=0)

        def progress(report) -> None:
            dialog.labelText = f"{report.stage} registration, level {report.level + 1} of {report.levels}, metric {report.metric:.4f}"
            slicer.app.processEvents()

        try:
            with slicer.util.tryWithErrorDisplay("FuseVis could not register the volumes.", waitCursor=True):
                self.logic.register(progress=progress, should_cancel=lambda: dialog.wasCanceled)
                self.ui.statusLabel.text = "PET registered to MRI."
        except RegistrationCancelled:
            self.ui.statusLabel.text = "Registration cancelled; the PET is unchanged."
        finally:
            dialog.close()

    def onFuseButton(self) -> None:
        if not self.initializeLogic():
            return
        self._failedMethod = None
        with slicer.util.tryWithErrorDisplay("FuseVis could not start the fusion.", waitCursor=True):
            # The memory check in prepare() runs the network: make it ready off the GUI thread first.
            self.prepareMethodThen(self.startFusion)

    def startFusion(self) -> None:
        with slicer.util.tryWithErrorDisplay("FuseVis could not start the fusion.", waitCursor=True):
            self.logic.prepare()
            self.showOutputs()
            self.ui.cancelButton.enabled = True
            self.scheduleStep()

    def onCancelButton(self) -> None:
        # Cancelling is not taking the next step; finished slices stay.
        if self._preparation is not None:
            # A preparation cannot be interrupted; the timer still ends it (or the Logic would stay busy).
            self._afterPreparation = None
        elif self._timer is not None:
            self._timer.stop()
        if hasattr(self, "ui"):
            self.ui.cancelButton.enabled = False

    def onSaveSceneButton(self) -> None:
        if not self.initializeLogic():
            return
        path = qt.QFileDialog.getSaveFileName(None, "Save FuseVis scene", "FuseVis.mrb", "Medical Reality Bundle (*.mrb)")
        if path:
            with slicer.util.tryWithErrorDisplay("FuseVis could not save the scene.", waitCursor=True):
                self.ui.statusLabel.text = f"Saved {self.logic.save_scene(path)}"

    # -- stepping ------------------------------------------------------------------------------

    def scheduleStep(self) -> None:
        """Take steps from the event loop until the work is done (the cursor's newest position first)."""
        if self.logic is not None and self.logic.prepared and not self._timer.isActive():
            self.ui.cancelButton.enabled = True
            self._timer.start()

    def prepareMethodThen(self, continuation) -> None:
        """Load and plan the current method's networks on a thread of their own (seconds), then ``continuation()``."""
        from FuseVisMRML import MethodPreparation

        preparation = MethodPreparation(self.logic, self.logic.parameters.method)
        if preparation.poll():  # ready already
            continuation()
            return
        self._preparation, self._afterPreparation = preparation, continuation
        self.ui.statusLabel.text = f"{self.logic.busy}..."
        self.ui.progressBar.maximum = 0  # busy, without a measure of how far
        self.ui.cancelButton.enabled = True
        # The Logic refuses another method or another pair while it is busy.
        self.ui.methodComboBox.enabled = self.ui.fuseButton.enabled = False
        self._timer.setInterval(PREPARATION_POLL_MS)
        self._timer.start()

    def dropPreparation(self) -> None:
        """Forget the preparation (ended, or its Logic closed: the thread then ends on its own) and restore the panel."""
        self._preparation = self._afterPreparation = None
        if self._timer is not None:
            self._timer.setInterval(0)
        if hasattr(self, "ui"):
            self.ui.progressBar.maximum = 100
            self.ui.statusLabel.text = ""
            self.ui.methodComboBox.enabled = True
            self.updateGUIFromParameterNode()

    def endPreparation(self) -> None:
        """On the timer, once the preparation ended: report its failure, or go on with what waited for it."""
        preparation, continuation = self._preparation, self._afterPreparation
        self.dropPreparation()
        if preparation.error is not None:
            self._failedMethod = preparation.method
            self.onCancelButton()
            self.showError(f"FuseVis could not prepare {preparation.method}: {preparation.error}")
        elif continuation is not None:
            continuation()
        else:  # cancelled while it ran
            self.onCancelButton()

    def onTimer(self) -> None:
        if self._preparation is not None:
            if self.logic is None:  # the scene closed meanwhile
                self.dropPreparation()
            elif self._preparation.poll():
                self.endPreparation()
                return
            else:
                return
        if self.logic is None or not self.logic.has_work():
            self.onCancelButton()
            return
        method = self.logic.parameters.method
        if not self.logic.method_ready(method):
            # A Jacobian under the cursor would plan the new method's network right here, on the GUI thread.
            if method == self._failedMethod:
                self.onCancelButton()
                return
            try:
                self.prepareMethodThen(self.scheduleStep)
            except Exception as error:  # noqa: BLE001 - e.g. the method is unknown: shown, stepping stops
                self.onCancelButton()
                self.showError(str(error))
            return
        try:
            # A short budget keeps the panel and the views responsive; waiting steps do not spin the CPU.
            report = self.logic.step(budget_seconds=0.02)
        except Exception as error:  # noqa: BLE001 - shown to the user; stepping stops
            self.onCancelButton()
            self.showError(str(error))
            return
        total = max(1, 2 * report.total_slices)
        self.ui.progressBar.value = int(100 * (report.fused_slices + report.guidance_slices) / total)
        self.ui.statusLabel.text = (
            f"{report.method}: {report.fused_slices}/{report.total_slices} slices fused, "
            f"{report.guidance_slices}/{report.total_slices} with guidance images"
        )
        if report.kind == "cursor" or report.kind == "guidance":
            self.showReadout()

    def showReadout(self) -> None:
        readout = self.logic.readout()
        if readout is None:
            return

        def shown(value) -> str:
            return "pending" if value is None else f"{value:.4g}"

        self.ui.readoutLabel.text = (
            f"Slice {readout.slice}, pixel ({readout.row}, {readout.col}); RAS "
            f"({readout.ras[0]:.1f}, {readout.ras[1]:.1f}, {readout.ras[2]:.1f}) mm\n"
            f"MRI {readout.mri_value:.4g} (input {readout.mri_input:.3f}), PET {readout.pet_value:.4g} (input {readout.pet_input:.3f})\n"
            f"Fused {shown(readout.fused)}\n"
            f"Jacobian at the pixel: MRI {readout.jacobian_mri:.4g}, PET {readout.jacobian_pet:.4g}\n"
            f"Guidance: MRI {shown(readout.guidance_mri)}, PET {shown(readout.guidance_pet)}"
        )

    def showOutputs(self) -> None:
        params = self.logic.parameters
        slicer.util.setSliceViewerLayers(background=params.fusedVolume, foreground=params.jacobianPetVolume, foregroundOpacity=0.5)
        plots = slicer.modules.plots.logic()
        plots.ShowChartInLayout(params.scatterChart)

    def showError(self, message: str) -> None:
        self.ui.statusLabel.text = message
        slicer.util.errorDisplay(message)


#
# FuseVisTest
#


class FuseVisTest(ScriptedLoadableModuleTest):
    """The whole workflow on the demo inside Slicer: the same checks pytest runs on a plain MRML scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_FuseVis_workflow()

    def test_FuseVis_workflow(self):
        self.assertTrue(ensure_dependencies(ask=not slicer.app.commandOptions().testingEnabled), "dependencies are missing")
        from FuseVisMRML.self_test import run_workflow

        with tempfile.TemporaryDirectory() as work_dir:
            logic = run_workflow(slicer.mrmlScene, work_dir, method="WeightedAveraging", misaligned=True, log=self.delayDisplay)
            logic.close()
        logging.info("FuseVis test passed")
