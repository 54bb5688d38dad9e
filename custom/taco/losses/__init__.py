"""Pre-training objectives of TACO."""

from taco.losses.inter_instance import REVERSE_PAIRS, InterInstanceRankingLoss, draw_subject_pairs
from taco.losses.intra_instance import IntraInstanceRankingLoss
from taco.losses.objectives import OBJECTIVE_OPTIONS, OBJECTIVES, objective_option, objective_weight
from taco.losses.taco_loss import TacoLoss
from taco.losses.token_geometry import TokenGeometry

__all__ = ["OBJECTIVES", "OBJECTIVE_OPTIONS", "REVERSE_PAIRS", "IntraInstanceRankingLoss", "InterInstanceRankingLoss", "TacoLoss",
           "TokenGeometry", "draw_subject_pairs", "objective_option", "objective_weight"]
