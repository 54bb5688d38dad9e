"""Networks: the shared Swin encoder, token heads, the pre-training network, the classifier, late fusion of
modalities and weight transfer."""

from taco.networks.classifier import SwinClassifier
from taco.networks.encoder import (NUM_STAGES, REFERENCE_WINDOW_SIZE, encoder_architecture, encoder_stage,
                                   stage_channels, swin_encoder, window_size_of)
from taco.networks.encoder_recipe import fine_tuning_architecture, read_encoder_recipe
from taco.networks.late_fusion import LateFusionSwinClassifier, LateFusionSwinUNETR
from taco.networks.modality_fusion import (FUSION_MODES, FUSION_TYPES, fuse_modalities, presence_mask,
                                           select_fusion_network)
from taco.networks.pretraining_network import PretrainingOutput, TacoPretrainingNetwork
from taco.networks.reconstruction_head import ReconstructionHead
from taco.networks.token_classifier import (CONVOLUTION_SKIPS, READOUTS, TOKEN_READOUTS, GatedAttentionPooling,
                                           TokenEvidence, TokenMILClassifier, max_pool_token_features,
                                           pool_token_logits, select_classifier)
from taco.networks.tokens import TokenProjection, foreground_tokens, spatial_tokens, token_grid
from taco.networks.weight_transfer import TransferReport, load_pretrained_encoder, read_encoder_state

__all__ = ["CONVOLUTION_SKIPS", "FUSION_MODES", "FUSION_TYPES", "GatedAttentionPooling", "LateFusionSwinClassifier",
           "LateFusionSwinUNETR", "NUM_STAGES", "PretrainingOutput", "READOUTS", "REFERENCE_WINDOW_SIZE",
           "ReconstructionHead", "SwinClassifier", "TOKEN_READOUTS", "TacoPretrainingNetwork", "TokenEvidence",
           "TokenMILClassifier", "TokenProjection", "TransferReport", "encoder_architecture", "encoder_stage",
           "fine_tuning_architecture", "foreground_tokens", "fuse_modalities", "load_pretrained_encoder",
           "max_pool_token_features", "pool_token_logits", "presence_mask", "read_encoder_recipe", "read_encoder_state",
           "select_classifier", "select_fusion_network", "spatial_tokens", "stage_channels", "swin_encoder",
           "token_grid", "window_size_of"]
