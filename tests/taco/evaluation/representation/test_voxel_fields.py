"""Per-voxel fields on the preprocessed grid: world position, inside mask and the ground truth read back."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, NormalizeIntensityd, Orientationd, SpatialPadd, Spacingd

from taco.evaluation.representation import tissue_class_names, voxel_fields
from taco.transforms import LoadModalitiesd

SHAPE = (10, 12, 8)
# LPS-stored 2 mm grid, so reorientation to RAS is part of what must be undone
AFFINE = np.array([[-2.0, 0, 0, 30.0], [0, -2.0, 0, 20.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])


def world_of_voxels(affine: np.ndarray, shape) -> np.ndarray:
    voxels = np.indices(shape, dtype=np.float64).reshape(3, -1)
    return (affine[:3, :3] @ voxels + affine[:3, 3:]).reshape(3, *shape)


@pytest.fixture
def subject(tmp_path):
    """A subject with two modalities, an identity template field (each voxel shows its own world point) and a
    tissue map whose class is the world x coordinate in 5 mm bands."""
    rng = np.random.default_rng(0)
    paths = []
    for name in ("t1", "t2"):
        paths.append(str(tmp_path / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(rng.uniform(1, 2, SHAPE).astype(np.float32), AFFINE), paths[-1])
    world = world_of_voxels(AFFINE, SHAPE)
    nib.save(nib.Nifti1Image(np.moveaxis(world, 0, -1).astype(np.float32), AFFINE), tmp_path / "coords.nii.gz")
    tissue = np.floor((world[0] - 11.0) / 5.0).astype(np.uint8)
    nib.save(nib.Nifti1Image(tissue, AFFINE), tmp_path / "tissue.nii.gz")
    return {"subject": "s1", "image": paths, "template_coords": str(tmp_path / "coords.nii.gz"),
            "tissue": str(tmp_path / "tissue.nii.gz")}


def preprocess(item, pixdim=3.0, roi=16):
    """The pre-training bundle's deterministic chain: load, RAS, resample, z-score, pad."""
    chain = Compose([LoadModalitiesd("image"), Orientationd("image", axcodes="RAS"),
                     Spacingd("image", pixdim=[pixdim] * 3, mode="bilinear"),
                     NormalizeIntensityd("image", nonzero=True, channel_wise=True),
                     SpatialPadd("image", spatial_size=[roi] * 3)])
    return chain(dict(item))["image"]


def test_identity_deformation_gives_each_voxel_its_own_coordinates(subject):
    image = preprocess(subject)
    fields = voxel_fields(image, subject, num_tissue_classes=4)
    inside = fields["inside"][0].bool()
    assert fields["world"].shape == (3, 16, 16, 16) == fields["template"].shape
    assert 0 < inside.sum() < inside.numel()  # the pad adds voxels outside the image
    assert torch.allclose(fields["template"][:, inside], fields["world"][:, inside], atol=1e-3)
    world = fields["world"].reshape(3, -1)
    low, high = AFFINE[:3, 3] + AFFINE[:3, :3] @ (np.array(SHAPE) - 1), AFFINE[:3, 3]
    low, high = np.minimum(low, high) - 1.0, np.maximum(low, high) + 1.0  # half a 2 mm voxel beyond the centres
    expected = ((world >= torch.tensor(low)[:, None]) & (world <= torch.tensor(high)[:, None])).all(0)
    assert torch.equal(inside.reshape(-1), expected)


def test_tissue_classes_follow_the_world_position(subject):
    fields = voxel_fields(preprocess(subject), subject, num_tissue_classes=4)
    inside = fields["inside"][0].bool()
    assert torch.all(fields["tissue"].sum(0) == 1.0)
    expected = torch.floor((fields["world"][0] - 11.0) / 5.0).clamp(0, 3)
    agree = (fields["tissue"].argmax(0) == expected)[inside].float().mean()
    assert agree > 0.8  # nearest-voxel sampling at 3 mm blurs the band edges a little


def test_items_without_ground_truth_give_world_and_inside_only(subject):
    item = {"subject": "s1", "image": subject["image"]}
    assert set(voxel_fields(preprocess(item), item, num_tissue_classes=4)) == {"world", "inside"}


def test_bad_ground_truth_is_named(subject, tmp_path):
    image = preprocess(subject)
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 2), np.float32), AFFINE), tmp_path / "two.nii.gz")
    with pytest.raises(ValueError, match=r"subject 's1', template_coords, file .*two.nii.gz: expected 3 components"):
        voxel_fields(image, {**subject, "template_coords": str(tmp_path / "two.nii.gz")}, 4)
    with pytest.raises(ValueError, match=r"tissue, file .*tissue.nii.gz: values must be tissue classes 0 .. 1"):
        voxel_fields(image, subject, num_tissue_classes=2)
    plain = torch.as_tensor(image).as_subclass(torch.Tensor)
    from monai.data import MetaTensor
    with pytest.raises(ValueError, match="metadata lacks"):
        voxel_fields(MetaTensor(plain, affine=image.affine), subject, 4)


def test_tissue_class_names_read_from_the_datalist(tmp_path):
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"tissue_classes": {"1": "csf", "0": "background"}}))
    assert tissue_class_names(path) == ["background", "csf"]
    path.write_text(json.dumps({"training": []}))
    assert tissue_class_names(path) is None
    path.write_text(json.dumps({"tissue_classes": {"0": "background", "2": "gm"}}))
    with pytest.raises(ValueError, match=r"values 0 .. K-1 to names, got values \[0, 2\]"):
        tissue_class_names(path)
