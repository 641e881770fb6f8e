"""Losses shared by the infiller's guidance (``socialmirror.diffusion.guidance``) and the fit to the evidence
(``socialmirror.inference.fit``), each in a module of its own (as BUDDI keeps its losses):

* ``robust``: Huber and Geman-McClure penalties;
* ``spheres``: the body's volume as spheres along its bones, and the overlap of two bodies' spheres
  (the differentiable interpenetration proxy).
"""
