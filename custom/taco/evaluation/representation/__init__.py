"""What a frozen encoder learned: token correspondence across subjects and modalities, neighbourhood overlap and
linear probes (tissue, crop position, subject class), over brain tokens, each against controls (chance, a code
of the crop position, the best achievable)."""

from taco.evaluation.representation.correspondence import CONTROLS, CorrespondenceTally
from taco.evaluation.representation.crops import CropDraw, CropPlacement, crop_placement, cut_crop, draw_crops
from taco.evaluation.representation.evaluation import (CROP_MODES, EVALUATIONS, RepresentationResults,
                                                       evaluate_representation)
from taco.evaluation.representation.frozen_features import (brain_tokens, crop_positions, frozen_encoder,
                                                            pool_to_tokens, stage_cell, stage_tokens, token_grid,
                                                            token_share, valid_tokens)
from taco.evaluation.representation.neighbourhoods import NEIGHBOUR_METRICS, neighbourhood_overlap
from taco.evaluation.representation.probes import (POSITION_PROBE_PENALTY, fit_probe, position_decodability_scores,
                                                  position_probe_scores, subject_probe_scores, token_probe_scores)
from taco.evaluation.representation.report import write_representation_report
from taco.evaluation.representation.voxel_fields import (GROUND_TRUTH_KEYS, TEMPLATE_COORDS_KEY, TISSUE_CLASSES_KEY,
                                                         TISSUE_KEY, tissue_class_names, voxel_fields)

__all__ = ["CONTROLS", "CROP_MODES", "EVALUATIONS", "GROUND_TRUTH_KEYS", "NEIGHBOUR_METRICS", "POSITION_PROBE_PENALTY",
           "TEMPLATE_COORDS_KEY", "TISSUE_CLASSES_KEY", "TISSUE_KEY", "CorrespondenceTally", "CropDraw",
           "CropPlacement", "RepresentationResults", "brain_tokens", "crop_placement", "crop_positions", "cut_crop",
           "draw_crops", "evaluate_representation", "fit_probe", "frozen_encoder", "neighbourhood_overlap",
           "pool_to_tokens", "position_decodability_scores", "position_probe_scores", "stage_cell", "stage_tokens",
           "subject_probe_scores", "tissue_class_names", "token_grid", "token_probe_scores", "token_share",
           "valid_tokens", "voxel_fields", "write_representation_report"]
