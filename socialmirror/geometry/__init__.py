"""Geometry: rotation conversions, cameras and projection, inverse-kinematics fitting."""
