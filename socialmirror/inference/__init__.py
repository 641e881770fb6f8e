"""3D inference: the estimator that runs a method (SocialMirror, its baselines and ablations) on observations."""
from socialmirror.inference.estimator import MethodUnavailableError, MotionEstimate, TwoPersonMotionEstimator
from socialmirror.inference.methods import METHOD_PRESETS, GuidanceWeights, MethodConfig, method_config

__all__ = ["METHOD_PRESETS", "GuidanceWeights", "MethodConfig", "MethodUnavailableError", "MotionEstimate",
           "TwoPersonMotionEstimator", "method_config"]
