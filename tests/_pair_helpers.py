"""A hand-made standing skeleton shared by the observation and clip tests (no body model needed)."""
from __future__ import annotations

import numpy as np

# A standing adult in SMPL-24 order, y up, facing +z, +x = the body's left (approximate SMPL rest joints).
STANDING = np.array([
    [0.0, 0.95, 0.0], [0.09, 0.86, 0.0], [-0.09, 0.86, 0.0], [0.0, 1.07, -0.02], [0.1, 0.5, 0.0],
    [-0.1, 0.5, 0.0], [0.0, 1.2, 0.0], [0.1, 0.08, -0.03], [-0.1, 0.08, -0.03], [0.0, 1.26, 0.01],
    [0.11, 0.02, 0.1], [-0.11, 0.02, 0.1], [0.0, 1.45, 0.0], [0.08, 1.37, 0.0], [-0.08, 1.37, 0.0],
    [0.0, 1.6, 0.03], [0.18, 1.38, 0.0], [-0.18, 1.38, 0.0], [0.22, 1.12, 0.0], [-0.22, 1.12, 0.0],
    [0.24, 0.88, 0.02], [-0.24, 0.88, 0.02], [0.25, 0.8, 0.03], [-0.25, 0.8, 0.03],
])
