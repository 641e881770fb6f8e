"""One clothed anny body standing upright and facing the camera, for tests that render a person for MediaPipe."""
from __future__ import annotations

import numpy as np
import torch


def person_facing_camera(anny_body) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (V, 3), joints (24, 3), faces, face colours) of the body in the camera frame (y down), at the
    origin: add an offset to place it."""
    from socialmirror.render.scene import Outfit, face_colors, vertex_materials

    R = torch.eye(3).repeat(24, 1, 1)
    R[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # y down in the camera frame, facing the camera
    with torch.no_grad():
        rest = anny_body(torch.eye(3).expand(24, 3, 3))
        posed = anny_body(R)
    mats = vertex_materials(rest.vertices.numpy(), rest.joints.numpy(), False)
    faces = anny_body.faces.numpy()
    colours = face_colors(mats, faces, Outfit.sample(np.random.default_rng(1)))
    return posed.vertices.numpy(), posed.joints.numpy(), faces, colours
