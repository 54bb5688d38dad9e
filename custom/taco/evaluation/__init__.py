"""Evaluation: classification metrics, the missing-modality sweep with its report, and the frozen-encoder
representation evaluation (:mod:`taco.evaluation.representation`)."""

from taco.evaluation import representation
from taco.evaluation.classification import CLASSIFICATION_METRICS, ClassificationMetric, classification_score
from taco.evaluation.missing_modality import MissingModalitySweep, ModalitySubsetBatch, evaluate_modality_subsets
from taco.evaluation.report import SUMMARY_FIELDS, modality_importance, subset_summary, write_missing_modality_report

__all__ = ["CLASSIFICATION_METRICS", "ClassificationMetric", "MissingModalitySweep", "ModalitySubsetBatch",
           "SUMMARY_FIELDS", "classification_score", "evaluate_modality_subsets", "modality_importance",
           "representation", "subset_summary", "write_missing_modality_report"]
