"""The montage picture written beside a demo data set."""

import matplotlib.image

from taco_tools import demo_data as demo


def test_montage_is_a_png_picture(demo_datalist):
    path = demo_datalist.parent / demo.MONTAGE_FILENAME
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and min(picture.shape[:2]) > 200
    assert picture.std() > 0.05
