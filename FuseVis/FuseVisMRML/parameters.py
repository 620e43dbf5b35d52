"""All FuseVis state in one MRML parameter node, so it is saved with the scene and shared by every host.

The node is the singleton ``vtkMRMLScriptedModuleNode`` tagged "FuseVis"
with the attribute ModuleName=FuseVis, the node Slicer's
``ScriptedLoadableModuleLogic.getParameterNode()`` would make, so the
desktop module, the browser viewer and a plain script find the same node.
Values are strings inside the node; :class:`FuseVisParameters` gives them
types, defaults and ranges. Node references (inputs, transform, outputs)
are MRML node references under the role names in :data:`NODE_ROLES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from FuseVisLib.errors import FuseVisError

MODULE_NAME = "FuseVis"

GAMMA_RANGE = (0.1, 2.0)
NEIGHBOURHOOD_RANGE = (3, 63)
BATCH_RANGE = (1, 256)
DEVICES = ("auto", "cpu", "cuda")

# Role name -> what the referenced node holds.
NODE_ROLES = {
    "mriVolume": "input MRI (scalar volume)",
    "petVolume": "input PET (scalar volume)",
    "registrationTransform": "linear transform PET -> MRI made by the registration",
    "petOnMriGrid": "PET resampled onto the MRI grid (original units)",
    "fusedVolume": "fused image, every axial slice, MRI geometry",
    "guidanceMriVolume": "guidance MRI image per axial slice",
    "guidancePetVolume": "guidance PET image per axial slice",
    "guidanceRgbVolume": "guidance RGB (R: guidance MRI, G: guidance PET, B: fused)",
    "jacobianMriVolume": "Jacobian MRI of the principal pixel, one slice",
    "jacobianPetVolume": "Jacobian PET of the principal pixel, one slice",
    "scatterTable": "guidance MRI and PET of every pixel of the slice",
    "neighbourhoodTable": "guidance MRI and PET of the principal pixel's neighbourhood",
    "scatterChart": "plot chart: scatterplot of guidance MRI vs PET",
    "jacobianColors": "colour table of the Jacobian overlays (gamma1)",
    "guidanceColors": "colour table of the guidance overlays (gamma2)",
}

OUTPUT_ROLES = tuple(role for role in NODE_ROLES if role not in ("mriVolume", "petVolume", "registrationTransform"))


@dataclass(frozen=True)
class _Field:
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None


FIELDS: dict[str, _Field] = {
    "method": _Field(str, "WeightedAveraging"),
    "gamma1": _Field(float, 1.0, *GAMMA_RANGE),
    "gamma2": _Field(float, 1.0, *GAMMA_RANGE),
    # Side of the square around the principal pixel (21: the saliency engine's default half-width of 10).
    "neighbourhoodSize": _Field(int, 21, *NEIGHBOURHOOD_RANGE),
    "device": _Field(str, "auto", choices=DEVICES),
    "batchSize": _Field(int, 8, *BATCH_RANGE),
    # 0 means: whatever the machine (or the GPU) has free.
    "memoryLimitGB": _Field(float, 0.0, 0.0, None),
    "alreadyRegistered": _Field(bool, False),
    "viewSlice": _Field(int, -1),
    # Which method the output volumes hold and which of its slices are done ("0-4,9"), for reloading a scene.
    "resultsMethod": _Field(str, ""),
    "resultsInputs": _Field(str, ""),
    "fusedSlices": _Field(str, ""),
    "guidanceSlices": _Field(str, ""),
}


class FuseVisParameters:
    """Typed access to the FuseVis parameter node: ``params.gamma1 = 0.5``, ``params.fusedVolume``.

    Reading a value never changes the node. Writing checks the value (a
    FuseVisError names the allowed range) and stores it, which fires the
    node's ModifiedEvent: the Logic observes that event and reacts.
    """

    def __init__(self, node) -> None:
        object.__setattr__(self, "node", node)

    def __getattr__(self, name: str) -> Any:
        if name in FIELDS:
            return _parse(name, self.node.GetParameter(name))
        if name in NODE_ROLES:
            return self.node.GetNodeReference(name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FIELDS:
            self.node.SetParameter(name, _format(name, value))
        elif name in NODE_ROLES:
            self.node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        else:
            raise AttributeError(f"FuseVis has no parameter {name!r}; parameters: {', '.join([*FIELDS, *NODE_ROLES])}")

    def values(self) -> dict[str, Any]:
        """Every typed parameter value (not the node references)."""
        return {name: getattr(self, name) for name in FIELDS}


def parameter_node(scene):
    """The scene's FuseVis parameter node, created (and added to the scene) if it has none."""
    node = scene.GetSingletonNode(MODULE_NAME, "vtkMRMLScriptedModuleNode")
    if node is None:
        for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
            candidate = scene.GetNthNodeByClass(index, "vtkMRMLScriptedModuleNode")
            if candidate.GetAttribute("ModuleName") == MODULE_NAME:
                return candidate
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)  # CreateNodeByClass hands over a reference the scene will hold
        node.SetSingletonTag(MODULE_NAME)
        node.SetName(scene.GenerateUniqueName(MODULE_NAME))
        node.SetAttribute("ModuleName", MODULE_NAME)
        scene.AddNode(node)
    return node


def _parse(name: str, text: str) -> Any:
    field = FIELDS[name]
    if text == "":
        return field.default
    if field.kind is bool:
        return text == "true"
    return field.kind(text)


def _format(name: str, value: Any) -> str:
    field = FIELDS[name]
    if field.kind is bool:
        return "true" if value else "false"
    try:
        typed = field.kind(value)
    except (TypeError, ValueError):
        raise FuseVisError(f"parameter {name} must be a {field.kind.__name__}, got {value!r}") from None
    if field.kind is int and typed != value:
        raise FuseVisError(f"parameter {name} must be a whole number, got {value!r}")
    if field.choices is not None and typed not in field.choices:
        raise FuseVisError(f"parameter {name} must be one of {', '.join(field.choices)}, got {value!r}")
    too_low = field.low is not None and typed < field.low
    too_high = field.high is not None and typed > field.high
    if too_low or too_high:
        bounds = f"{field.low:g} to {field.high:g}" if field.high is not None else f"at least {field.low:g}"
        raise FuseVisError(f"parameter {name} must be {bounds}, got {value!r}")
    if name == "neighbourhoodSize" and typed % 2 == 0:
        raise FuseVisError(f"neighbourhoodSize must be odd (the principal pixel sits in the middle), got {typed}")
    return repr(typed) if field.kind is float else str(typed)


def slices_to_text(done: np.ndarray) -> str:
    """Boolean mask of slices -> compact ranges, e.g. ``0-4,9``."""
    indices = np.flatnonzero(done)
    if indices.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.concatenate([[indices[0]], indices[breaks + 1]])
    ends = np.concatenate([indices[breaks], [indices[-1]]])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts, ends))


def slices_from_text(text: str, count: int) -> np.ndarray:
    """Inverse of :func:`slices_to_text` for a volume of ``count`` slices."""
    done = np.zeros(count, dtype=bool)
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        done[int(first) : int(last or first) + 1] = True
    return done
