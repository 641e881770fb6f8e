"""Outputs for people: ``render.mp4`` (camera view with the meshes beside a side view, software-rendered in
numpy) and ``viewer.html`` (a self-contained three.js page)."""
from socialmirror.render.mesh_renderer import SideCamera, draw_meshes, draw_skeleton, estimate_up, rasterize
from socialmirror.render.video import render_frame, write_render_video

__all__ = ["SideCamera", "draw_meshes", "draw_skeleton", "estimate_up", "rasterize", "render_frame",
           "write_render_video", "write_viewer_html"]


def __getattr__(name):
    if name == "write_viewer_html":
        from socialmirror.render.viewer import write_viewer_html
        return write_viewer_html
    raise AttributeError(name)
