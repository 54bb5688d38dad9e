"""Networks: the shared Swin encoder, token heads and the pre-training network."""

from taco.networks.encoder import NUM_STAGES, stage_channels, swin_encoder
from taco.networks.pretraining_network import PretrainingOutput, TacoPretrainingNetwork
from taco.networks.reconstruction_head import ReconstructionHead
from taco.networks.tokens import TokenProjection, spatial_tokens

__all__ = ["NUM_STAGES", "PretrainingOutput", "ReconstructionHead", "TacoPretrainingNetwork", "TokenProjection",
           "spatial_tokens", "stage_channels", "swin_encoder"]
