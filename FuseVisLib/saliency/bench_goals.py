"""The goals ``fusevis bench`` judges its figures against, and the verdict on each.

They were set for a 256x256 slice on this project's machine (2 CPU cores, no
GPU): the paper's networks, its V100 guidance times and its 3-5 ms Jacobian,
beaten on a CPU. At another size or on a GPU they do not apply, and nothing
is judged rather than something judged wrongly.
"""
from __future__ import annotations

GOAL_SIZE = 256
GOAL_DEVICE = "cpu"

# Method -> figure -> the most it may be.
PER_METHOD = {
    "FunFuseAn": {"jacobian_ms_median": 3.0, "guidance_s": 20.0},
    "DeepFuse": {"jacobian_ms_median": 3.0, "guidance_s": 25.0},
    "MaskNet": {"jacobian_ms_median": 5.0, "guidance_s": 60.0},
    "DeepPedestrian": {"jacobian_ms_median": 8.0, "guidance_s": 80.0},
}
# Every method, exactness and memory: float32 paths agree to about 1e-7, and a receptive radius a few
# pixels too small shows only at about 1e-5, so no looser; peak memory below 3 GB.
EVERY_METHOD = {"max_abs_error": 1e-6, "peak_rss_mb": 3000.0}
STRICTLY_BELOW = {"peak_rss_mb"}  # the others may reach their goal


def judged(method: str, figures: dict, size: int, device: str) -> dict[str, dict] | None:
    """``{figure: {"value", "relation", "goal", "met"}}`` for one method's bench figures, or None where the goals do not
    apply (another size or device). ``max_abs_error`` is judged on the larger of its Jacobian and guidance errors."""
    if size != GOAL_SIZE or device != GOAL_DEVICE:
        return None
    verdicts = {}
    for figure, goal in {**PER_METHOD.get(method, {}), **EVERY_METHOD}.items():
        value = figures[figure]
        if isinstance(value, dict):
            value = max(value.values())
        strictly = figure in STRICTLY_BELOW
        met = value < goal if strictly else value <= goal
        verdicts[figure] = {"value": value, "relation": "<" if strictly else "<=", "goal": goal, "met": bool(met)}
    return verdicts
