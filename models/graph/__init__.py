"""Node-property prediction on edge streams: bounded per-node state + family-selecting learner."""

from .features import FAMILIES
from .learner import NodePropertyClassifier
from .state import EdgeStreamState

__all__ = ["EdgeStreamState", "FAMILIES", "NodePropertyClassifier"]
