"""Evaluation: classification metrics and the missing-modality sweep with its report."""

from taco.evaluation.classification import CLASSIFICATION_METRICS, ClassificationMetric, classification_score
from taco.evaluation.finetuned_bundle import read_bundle_config
from taco.evaluation.missing_modality import ModalitySubsetBatch, evaluate_modality_subsets
from taco.evaluation.results_table import classification_results, results_markdown, segmentation_results
from taco.evaluation.report import modality_importance, write_missing_modality_report

__all__ = ["CLASSIFICATION_METRICS", "ClassificationMetric", "ModalitySubsetBatch", "classification_results",
           "classification_score", "evaluate_modality_subsets", "modality_importance", "read_bundle_config",
           "results_markdown", "segmentation_results", "write_missing_modality_report"]
