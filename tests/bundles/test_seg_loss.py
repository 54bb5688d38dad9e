"""The segmentation bundle's loss treats each overlapping region channel as its own binary problem (MONAI's
DiceCELoss, which the bundle used up to 0.2.0, takes a softmax cross-entropy across channels: this test fails on it)."""

import torch
from monai.losses import DiceLoss
from torch.nn import functional as F

from taco_tools.profiles import get_profile


def _loss():
    return get_profile("micro").read_config("seg").get_parsed_content("loss")


def test_loss_is_batch_dice_plus_binary_cross_entropy_per_region():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 8, generator=generator)
    wt = torch.rand(2, 1, 8, 8, 8, generator=generator) > 0.5
    tc = wt & (torch.rand(2, 1, 8, 8, 8, generator=generator) > 0.5)
    target = torch.cat([tc, wt, tc & (torch.rand(2, 1, 8, 8, 8, generator=generator) > 0.5)], 1).float()
    reference = DiceLoss(sigmoid=True, batch=True)(logits, target) + F.binary_cross_entropy_with_logits(logits, target)
    assert torch.allclose(_loss()(logits, target), reference)

