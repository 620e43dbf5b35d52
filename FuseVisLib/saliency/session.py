"""One model and one image pair, for interactive exploration (hovering over pixels).

The forward pass is shared: the fused image, every Jacobian image and the
guidance images all reuse one linearisation of the network, so a Jacobian
image costs only a reverse pass over the rectangles it depends on. A session assumes the model's
weights do not change while it is in use.
"""
from __future__ import annotations

import torch
from torch import nn

from .cancellation import CancelCheck
from .guidance import compute_guidance
from .inputs import check_pixel, prepare_images
from .jacobian import cone_jacobian, fast_jacobian
from .linearisation import linearise
from .model_mode import evaluation_mode, fused_output
from .plan import CONE, WHOLE_IMAGE, plan_for
from .receptive_radius import AUTO
from .result import SaliencyImages
from .threads import jacobian_threads


class SaliencySession:
    """Fused image, Jacobian images and guidance images of ``model`` for one MRI/PET pair."""

    def __init__(self, model: nn.Module, mri, pet, *, radius=AUTO) -> None:
        self.model = model
        self.images = prepare_images(model, mri, pet)
        self._guidance: SaliencyImages | None = None
        with evaluation_mode(model):
            self.plan = plan_for(model, radius)
            if self.plan.jacobian_path == CONE:
                graph = self.plan.graph
                padding = max(max(r) for r in graph.diagonal_radii if r is not None)
                self._linearisation = linearise(graph, self.images.mri, self.images.pet, padding)
                fused = self._linearisation.output
            else:
                self._linearisation = None
                with torch.no_grad():
                    fused = fused_output(model, self.images.mri, self.images.pet)
        self.fused = fused[0, 0].detach().cpu().numpy()

    @property
    def path(self) -> tuple[str, str]:
        """(Jacobian path, guidance path)."""
        return self.plan.jacobian_path, self.plan.guidance_path

    def jacobian(self, row: int, col: int) -> SaliencyImages:
        """Jacobian images of output pixel (row, col), as :func:`jacobian_images`."""
        row, col = check_pixel(row, col, self.images.height, self.images.width)
        with jacobian_threads(self.plan.jacobian_path != WHOLE_IMAGE):
            if self._linearisation is not None:
                jacobians = cone_jacobian(self.plan, self.images, row, col, self._linearisation)
            else:
                with evaluation_mode(self.model):
                    jacobians = fast_jacobian(self.model, self.plan, self.images, row, col)
            return SaliencyImages(*(j.cpu().numpy() for j in jacobians), self.plan.jacobian_path, self.plan.reason, self.plan.radius)

    def guidance(self, progress: bool = False, cancel: CancelCheck = None) -> SaliencyImages:
        """Guidance images, as :func:`guidance_images` (computed once per session)."""
        if self._guidance is None:
            with evaluation_mode(self.model):
                guidance = compute_guidance(self.model, self.plan, self.images, progress, cancel, self._linearisation)
            self._guidance = SaliencyImages(
                *(g.detach().cpu().numpy() for g in guidance), self.plan.guidance_path, self.plan.reason, self.plan.radius
            )
        return self._guidance
