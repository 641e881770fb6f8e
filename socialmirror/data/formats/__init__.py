"""File formats of two-person motion: the interchange ``.npz`` folder format and BVH."""
