"""stream-x learners (Elsayed, Vasan & Mahmood 2024): deep RL from one sample at a time.

Pure numpy: a sparse-initialised LayerNorm MLP, the ObGD optimizer with eligibility traces,
running observation/reward normalisation, and the learners built from them.
"""

from .base import AgentState, StreamLearner
from .network import MLP, sparse_init
from .normalize import ObservationNormalizer, RewardScaler, RunningMeanStd, time_feature
from .obgd import AdaptiveObGD, ObGD
from .q import StreamQ
from .td import StreamTD

__all__ = [
    "MLP",
    "AdaptiveObGD",
    "AgentState",
    "ObGD",
    "ObservationNormalizer",
    "RewardScaler",
    "RunningMeanStd",
    "StreamLearner",
    "StreamQ",
    "StreamTD",
    "sparse_init",
    "time_feature",
]
