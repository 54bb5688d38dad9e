import numpy as np
from PIL import Image

from taco_tools.segmentation_figure import draw_segmentation, tumour_slice


def test_the_axial_slice_with_the_most_tumour_is_drawn():
    truth = np.zeros((8, 8, 6), dtype=np.uint8)
    truth[2:4, 2:4, 1] = 2
    truth[1:6, 1:6, 4] = 4
    assert tumour_slice(truth) == 4
    assert tumour_slice(np.zeros((8, 8, 6))) == 3  # no tumour: the middle slice


def test_the_picture_is_written(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.zeros((16, 16, 8), dtype=np.uint8)
    truth[4:10, 4:10, 3] = 2
    truth[6:8, 6:8, 3] = 1
    path = draw_segmentation(rng.random((16, 16, 8)), truth, np.roll(truth, 1, axis=0), tmp_path / "seg.png", "t")
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.size[0] > 2 * picture.size[1]  # three panels side by side
