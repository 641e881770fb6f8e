"""Geometry: rotation conversions, cameras and projection (CLIFF crop camera, boxes)."""
