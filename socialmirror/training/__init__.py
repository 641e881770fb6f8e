"""Training: targets, stage losses, the trainer (AdamW, warm restarts, DDP) and the recipe of the shipped weights.

``STAGES`` lives here, not in ``stages``, so that the command line can list the stages without importing torch.
"""

# ``geometry_linear`` trains after ``geometry`` in the recipe (recipe.STAGE_SHARES gives the order); it comes
# last here because a stage's random seed follows its place in this tuple and the others' must not move.
STAGES = ("initial", "geometry", "infiller", "independent", "text", "refiner", "geometry_linear")
