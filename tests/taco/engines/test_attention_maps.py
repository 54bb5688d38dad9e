"""TokenAttentionMaps: a map in the input's own geometry, the share of attention in the tumour pinned by an oracle
read-out (~1) and by uniform weights (the chance level), and nothing for a read-out without token weights."""

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine
from monai.transforms import (Compose, CropForegroundd, LoadImaged, Orientationd, ResizeWithPadOrCropd, Spacingd)
from torch import nn

from taco.engines import TokenAttentionMaps
from taco.networks import TokenEvidence

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-40.0, -50.0, -30.0]
TUMOUR_VALUE = 10.0


def subject(folder):
    """A 4-modality image (a brain ball of 1s with a tumour cube of 10s in the first modality) and its tumour label."""
    grid = np.stack(np.meshgrid(*[np.arange(side) for side in (40, 44, 36)], indexing="ij"))
    brain = ((grid - np.array([20, 22, 18])[:, None, None, None]) ** 2).sum(0) < 15 ** 2
    tumour = np.zeros(brain.shape, bool)
    tumour[22:30, 24:32, 18:26] = True
    image = np.repeat(brain[..., None].astype(np.float32), 4, axis=-1)
    image[..., 0][tumour] = TUMOUR_VALUE
    nib.save(nib.Nifti1Image(image, AFFINE), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(tumour.astype(np.uint8), AFFINE), folder / "seg.nii.gz")
    return {"subject": "s0", "image": str(folder / "image.nii.gz"), "tumour_label_file": str(folder / "seg.nii.gz")}


PREPROCESSING = Compose([LoadImaged("image", ensure_channel_first=True), Orientationd("image", axcodes="RAS"),
                         Spacingd("image", pixdim=(4.0, 4.0, 4.0)), CropForegroundd("image", source_key="image"),
                         ResizeWithPadOrCropd("image", (32, 32, 32))])


class Oracle(nn.Module):
    """Token weights on the tokens that hold the tumour intensity (``oracle``) or spread over the foreground."""

    def __init__(self, oracle=True):
        super().__init__()
        self.oracle = oracle

    def evidence(self, images, mask=None):
        grid = (4, 4, 4)
        source = (images[:, 0] == TUMOUR_VALUE) if self.oracle else (images != 0).any(1)
        weights = nn.functional.adaptive_avg_pool3d(source[:, None].float(), grid).flatten(1)
        valid = nn.functional.adaptive_max_pool3d((images != 0).any(1)[:, None].float(), grid).flatten(1) > 0
        return TokenEvidence(torch.zeros(1, 2), weights / weights.sum(1, keepdim=True), valid, grid)


def run(handler, item):
    engine = Engine(lambda engine, batch: None)
    handler.attach(engine)
    engine.run([[item]], max_epochs=1)


def test_an_oracle_read_out_puts_its_attention_in_the_tumour_and_the_map_lies_on_the_input(tmp_path):
    item = PREPROCESSING(subject(tmp_path))
    handler = TokenAttentionMaps(Oracle(), PREPROCESSING, output_dir=tmp_path / "maps", csv_path=tmp_path / "a.csv",
                                 mask_key=None)
    run(handler, item)
    written = nib.load(tmp_path / "maps" / "image_attention.nii.gz")
    assert written.shape == (40, 44, 36)
    np.testing.assert_allclose(written.affine, AFFINE, atol=1e-4)
    rows = [line.split(",") for line in (tmp_path / "a.csv").read_text().splitlines()]
    assert rows[0] == ["subject", "attention_in_tumour", "uniform_in_tumour", "tumour_voxels"]
    subject_name, attention, uniform, voxels = rows[1]
    assert subject_name == "s0" and int(voxels) == 8 ** 3
    assert float(attention) == 1.0, "the oracle's weight lies on the tumour's tokens"
    assert 0.0 < float(uniform) <= 0.5, "uniform weights: the tumour's share of the brain tokens"


def test_uniform_attention_scores_the_chance_level(tmp_path):
    item = PREPROCESSING(subject(tmp_path))
    handler = TokenAttentionMaps(Oracle(oracle=False), PREPROCESSING, csv_path=tmp_path / "a.csv", mask_key=None)
    run(handler, item)
    _, attention, uniform, _ = (tmp_path / "a.csv").read_text().splitlines()[1].split(",")
    assert abs(float(attention) - float(uniform)) < 0.1  # foreground-share weights are nearly the uniform ones
    weights, valid, index = handler.token_weights(Oracle(oracle=False), item)
    assert index.shape == (1, 40, 44, 36) and set(index.unique().long().tolist()) <= set(range(65))
    covered = index[0][torch.from_numpy(np.asarray(nib.load(tmp_path / "image.nii.gz").dataobj)[..., 1] > 0)]
    assert covered.min() > 0, "every brain voxel lies in a token"


def test_a_read_out_without_token_weights_writes_nothing(tmp_path):
    item = PREPROCESSING(subject(tmp_path))
    handler = TokenAttentionMaps(nn.Linear(1, 1), PREPROCESSING, output_dir=tmp_path / "maps",
                                 csv_path=tmp_path / "a.csv", mask_key=None)
    run(handler, item)
    assert not (tmp_path / "maps").exists() and not (tmp_path / "a.csv").exists()
