"""SocialMirror: two-person 3D motion reconstruction from monocular video."""

__version__ = "0.1.0"
