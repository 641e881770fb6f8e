"""The floor seen from one camera: its pitch from people standing on it (single-view metrology).

A camera ``h`` metres above a floor, pitched down by ``pitch``, sees a person whose head is ``H`` metres above
the floor: the point between their feet lies where the foot's ray meets the floor, and the head ``H`` above it
along the world's up. In units of the camera's height only the ratio ``rho = H / h`` is left, one per person,
so the rows of feet and head over many frames determine the pitch and each person's ``rho`` (Hoiem et al.,
"Putting objects in perspective", in 3D): a person who walks towards or away from the camera spans fewer or
more pixels by exactly the amount the pitch predicts from where their feet meet the floor (the horizon is the
row where that span would vanish).

What one view cannot give: a person who stands still says nothing about the pitch (any pitch fits with another
``rho``); the estimate then stays at its prior with the prior's spread, which ``FloorEstimate.pitch_sigma``
reports: a level camera, or the pitch at which the people's bodies stand in MediaPipe's 3D (``landmark_prior``;
its axes are the camera's, and a standing body leans back in them as the camera looks down). Of the image
points only the rows are used: the heads' columns would also give the pitch
(people off the image centre lean towards the vertical vanishing point), but people who interact lean
towards each other, which that cue takes for a pitch (measured under the render protocol: 30 degrees off on
Bütepage's leaning pairs, 7 with the rows alone; README, issue 22). The camera's roll is taken as zero. People
bend, sit and jump: the fit is robust (soft L1 at ``robust_scale`` of the person's height), and a person's
frames count as ``frames_per_person`` observations, since a bend or a lean lasts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


def camera_up(pitch: float) -> np.ndarray:
    """(3,) the world's up in the OpenCV camera frame (x right, y down, z forward) of a level-rolled camera
    pitched down by ``pitch`` radians."""
    return np.array([0.0, -math.cos(pitch), -math.sin(pitch)])


@dataclass(frozen=True)
class FloorEstimate:
    pitch: float  # radians, positive when the camera looks down
    pitch_sigma: float  # standard error of the pitch (radians): the prior's spread where the people say nothing
    height_ratio: np.ndarray  # (P,) each person's head height above the floor over the camera's height
    samples: int  # person-frames that took part

    @property
    def up(self) -> np.ndarray:
        return camera_up(self.pitch)


@dataclass(frozen=True)
class FloorPrior:
    pitch: float = 0.0  # a level camera
    pitch_sigma: float = math.radians(10.0)
    robust_scale: float = 0.05  # of the person's height in the image
    frames_per_person: int = 10  # all of a person's frames count as this many observations


# MediaPipe's world landmarks have the camera's axes, and a standing body in them leans back as the camera looks
# down, but by less than the camera's pitch: on the rendered validation split (11 sequences, cameras from level
# to 23 degrees down) the median body axis gave 0.73 of the pitch (least squares through zero); scaled by its
# inverse, it was 4.3 degrees off on average there and on held-out data, against 7.0 / 7.7 for the rows alone
# and 11 for a level camera (README, issue 22).
LANDMARK_PITCH_GAIN = 1.37
LANDMARK_PITCH_SIGMA = math.radians(5.0)


def landmark_prior(axes: np.ndarray, fallback: FloorPrior = FloorPrior()) -> FloorPrior:
    """The pitch prior from standing bodies' up in the camera frame, ``axes`` (N, 3) (``body.keypoints.
    body_axes`` of MediaPipe's world landmarks): the median axis's pitch times ``LANDMARK_PITCH_GAIN``, with
    ``LANDMARK_PITCH_SIGMA``; ``fallback`` (a level camera) where there is none."""
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 3)
    if len(axes) == 0:
        return fallback
    up = np.median(axes, axis=0)
    pitch = math.atan2(-up[2], -up[1])  # camera_up(p) = (0, -cos p, -sin p)
    return FloorPrior(LANDMARK_PITCH_GAIN * pitch, LANDMARK_PITCH_SIGMA, fallback.robust_scale,
                      fallback.frames_per_person)


def predicted_head_rows(pitch: float, rho: np.ndarray, feet: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N,) the image rows of the heads of people with head-height ratios ``rho`` (N,) whose feet appear at
    ``feet`` (N, 2), for a camera of intrinsics ``K`` pitched down by ``pitch``. NaN for feet at or above the
    horizon (their ray never meets the floor) and heads behind the camera."""
    up = camera_up(pitch)
    rays = np.concatenate([feet, np.ones((len(feet), 1))], 1) @ np.linalg.inv(K).T
    below = rays @ up  # < 0 for rays that go down to the floor
    with np.errstate(divide="ignore", invalid="ignore"):
        foot = np.where((below < -1e-9)[:, None], -rays / below[:, None], np.nan)  # on the floor, camera height 1
        head = (foot + rho[:, None] * up) @ K.T
        return np.where(head[:, 2] > 1e-6, head[:, 1] / head[:, 2], np.nan)


def estimate_floor(feet: np.ndarray, heads: np.ndarray, seen: np.ndarray, K: np.ndarray,
                   prior: FloorPrior = FloorPrior()) -> FloorEstimate:
    """The camera's pitch (and each person's head height over the camera's height) from the image points
    between the feet and of the heads (T, P, 2) of P people over T frames, where ``seen`` (T, P), for a camera
    of intrinsics ``K`` (3, 3)."""
    feet, heads = np.asarray(feet, dtype=np.float64), np.asarray(heads, dtype=np.float64)
    P = int(feet.shape[1])
    seen = np.asarray(seen, dtype=bool) & (heads[..., 1] < feet[..., 1])  # upside down: not standing
    frame, person = np.nonzero(seen)
    if len(person) == 0:
        return FloorEstimate(prior.pitch, prior.pitch_sigma, np.full(P, np.nan), 0)
    feet, head_rows = feet[frame, person], heads[frame, person, 1]
    span = feet[:, 1] - head_rows
    counts = np.bincount(person, minlength=P)
    weight = np.sqrt(np.minimum(1.0, prior.frames_per_person / counts[person])) if prior.frames_per_person \
        else np.ones(len(person))

    def residuals(x):
        r = (predicted_head_rows(x[0], np.exp(x[1:][person]), feet, K) - head_rows) / span * weight
        r = np.where(np.isfinite(r), r, 10.0)  # feet above the horizon: far off (the soft L1 caps it)
        # The prior in the residuals' unit (a head off by ``robust_scale`` of the height counts as one sigma).
        return np.append(r, (x[0] - prior.pitch) / prior.pitch_sigma * prior.robust_scale)

    best = None
    for start in np.radians([-10.0, 0.0, 10.0, 25.0]):  # the horizon may lie anywhere: a few starts
        sol = least_squares(residuals, np.concatenate([[start], np.zeros(P)]), loss="soft_l1",
                            f_scale=prior.robust_scale)
        if best is None or sol.cost < best.cost:
            best = sol
    return FloorEstimate(float(best.x[0]), _pitch_sigma(best, prior),
                         np.where(counts > 0, np.exp(best.x[1:]), np.nan), int(len(person)))


# A foot keypoint within this share of its person's height (in the image) of the other person's foot keypoints
# may be the other's: MediaPipe puts a far person's ankles on the near person's feet where their legs overlap,
# at full confidence (the CMU pair under render), which says that the two stand at one depth.
FOOT_OWNERSHIP = 0.15


def floor_depth_log_ratio(feet: np.ndarray, height_px: np.ndarray, K: np.ndarray, up: np.ndarray,
                          ownership: float = FOOT_OWNERSHIP) -> float | None:
    """``log(z_0 / z_1)``: how much farther person 0 stands from the camera than person 1, from where each one's
    lowest foot keypoint meets the floor, in units of the camera's height (which cancels): the median over the
    frames where both have a foot keypoint of their own. ``feet`` (T, 2, F, 3) u, v and a confidence (NaN or
    <= 0: not seen), ``height_px`` (T, 2) each person's height in the image, ``up`` the world's up in the camera
    frame. A foot keypoint within ``ownership`` of a height of one of the other's is not used. None where no
    frame has both."""
    feet = np.asarray(feet, dtype=np.float64)
    seen = np.isfinite(feet).all(-1) & (np.nan_to_num(feet[..., 2]) > 0)
    uv = feet[..., :2]
    near = np.linalg.norm(uv[:, :, :, None] - uv[:, ::-1, None, :], axis=-1)  # (T, 2, F, F) to the other's feet
    near = np.where(seen[:, ::-1, None, :], near, np.inf).min(-1)
    own = seen & (near > ownership * np.asarray(height_px, dtype=np.float64)[..., None])
    rows = np.where(own, uv[..., 1], -np.inf)
    lowest = np.argmax(rows, axis=-1)  # (T, 2) the lowest own foot
    both = own.any(-1).all(-1)
    if not both.any():
        return None
    point = np.take_along_axis(uv, lowest[..., None, None], axis=2)[:, :, 0][both]  # (N, 2, 2)
    rays = np.concatenate([point, np.ones(point.shape[:-1] + (1,))], -1) @ np.linalg.inv(K).T
    below = -(rays @ np.asarray(up, dtype=np.float64))  # > 0 for rays that go down to the floor
    ok = (below > 1e-6).all(-1)
    if not ok.any():
        return None
    depth = rays[ok][..., 2] / below[ok]  # camera height 1
    return float(np.median(np.log(depth[:, 0] / depth[:, 1])))


def _pitch_sigma(sol, prior: FloorPrior) -> float:
    """The pitch's standard error from the Gauss-Newton curvature at the solution (residuals in units of the
    robust scale), never above the prior's own spread."""
    J = sol.jac / prior.robust_scale
    cov = np.linalg.pinv(J.T @ J)
    return float(min(math.sqrt(max(cov[0, 0], 0.0)), prior.pitch_sigma))
