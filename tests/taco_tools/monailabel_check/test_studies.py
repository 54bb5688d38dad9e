import json

import nibabel as nib
import numpy as np
import pytest

from taco_tools.monailabel_check import CaseGeometry, stack_modalities, write_studies
from tests.taco_tools.monailabel_check.volumes import AFFINE, BUNDLE_ORDER, SHAPE, save, write_datalist


def test_write_studies_stacks_in_the_bundle_order_not_the_datalist_order(tmp_path):
    datalist_order = ["flair", "t2", "t1", "t1ce"]
    datalist = write_datalist(tmp_path / "data", datalist_order, {"s0": 0, "s1": 1, "s2": 0})
    cases = write_studies(datalist, tmp_path / "studies", BUNDLE_ORDER, num_cases=2)

    # the tumour subject first, then the first of the others; two cases only
    assert list(cases) == ["s1", "s0"]
    assert sorted(path.name for path in (tmp_path / "studies").iterdir()) == ["s0.nii.gz", "s1.nii.gz"]
    study = nib.load(tmp_path / "studies" / "s1.nii.gz")
    assert study.shape == (*SHAPE, 4)
    np.testing.assert_allclose(study.affine, AFFINE)
    assert study.header.get_xyzt_units()[0] == "mm"
    channel_values = [float(np.unique(np.asarray(study.dataobj)[..., c])[0]) for c in range(4)]
    assert channel_values == [datalist_order.index(m) + 1 + 10 for m in BUNDLE_ORDER]
    assert cases["s1"] == CaseGeometry(SHAPE, tuple(tuple(row) for row in AFFINE.tolist()))


def test_write_studies_rejects_a_modality_the_datalist_lacks(tmp_path):
    datalist = write_datalist(tmp_path / "data", ["t1", "t1ce", "t2"], {"s0": 0})
    with pytest.raises(ValueError, match=r"\['flair'\]"):
        write_studies(datalist, tmp_path / "studies", BUNDLE_ORDER)


def test_write_studies_rejects_files_that_do_not_match_their_modality(tmp_path):
    datalist = write_datalist(tmp_path / "data", BUNDLE_ORDER, {"s0": 0})
    content = json.loads(datalist.read_text())
    content["test"][0]["image"].reverse()
    datalist.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="s0.*is not the t1 image"):
        write_studies(datalist, tmp_path / "studies", BUNDLE_ORDER)


@pytest.mark.parametrize("shape, affine, message", [((5, 6, 8), AFFINE, "shape"), (SHAPE, np.eye(4), "affine")])
def test_stack_modalities_rejects_images_on_another_grid(tmp_path, shape, affine, message):
    first = save(tmp_path / "a.nii.gz", np.zeros(SHAPE, np.float32))
    second = save(tmp_path / "b.nii.gz", np.zeros(shape, np.float32), affine)
    with pytest.raises(ValueError, match=f"b.nii.gz: {message}"):
        stack_modalities([first, second], tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()
