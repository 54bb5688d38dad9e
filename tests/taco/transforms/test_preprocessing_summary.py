"""describe_preprocessing: what a chain does, read from MONAI's own transforms (the recipe that fine-tuning compares
with the pre-training's)."""

from monai.transforms import Compose, NormalizeIntensityd, Orientationd, RandFlipd, Spacingd, SpatialPadd

from taco.transforms import describe_preprocessing


def test_each_step_is_read_from_the_transform_that_applies_it():
    chain = [Orientationd("image", axcodes="LPS"), Spacingd("image", pixdim=(4, 2.5, 1)),
             NormalizeIntensityd("image", nonzero=False, channel_wise=True), SpatialPadd("image", (8, 8, 8))]
    summary = describe_preprocessing(chain, (32, 48, 64))
    assert summary == {"orientation": "LPS", "pixdim": [4.0, 2.5, 1.0],
                       "normalisation": {"method": "z-score", "nonzero": False, "channel_wise": True},
                       "roi_size": [32, 48, 64]}
    assert all(type(value) in (str, list, dict) for value in summary.values())  # plain values for a JSON recipe
    assert describe_preprocessing(Compose(chain), (32, 48, 64)) == summary


def test_a_step_the_chain_lacks_is_none_and_other_transforms_are_ignored():
    summary = describe_preprocessing([RandFlipd("image", prob=0.5), NormalizeIntensityd("image", nonzero=True)], [96] * 3)
    assert summary == {"orientation": None, "pixdim": None, "roi_size": [96, 96, 96],
                       "normalisation": {"method": "z-score", "nonzero": True, "channel_wise": False}}
    assert describe_preprocessing([], (16, 16, 16)) == {"orientation": None, "pixdim": None, "normalisation": None,
                                                        "roi_size": [16, 16, 16]}


def test_the_bundles_chains_differ_where_their_settings_do():
    """A recipe comparison sees a pixdim change even when everything else is equal."""
    def chain(pixdim):
        return [Orientationd("image", axcodes="RAS"), Spacingd("image", pixdim=pixdim),
                NormalizeIntensityd("image", nonzero=True, channel_wise=True)]

    assert describe_preprocessing(chain((1, 1, 1)), (96,) * 3) == describe_preprocessing(chain([1.0] * 3), (96,) * 3)
    assert describe_preprocessing(chain((1, 1, 1)), (96,) * 3) != describe_preprocessing(chain((2, 2, 2)), (96,) * 3)


def test_the_foreground_normalisation_is_recorded_with_its_rule():
    from taco.transforms import NormalizeForegroundd

    summary = describe_preprocessing([NormalizeForegroundd("image", "otsu")], (32, 32, 32))
    assert summary["normalisation"] == {"method": "z-score", "foreground": "otsu"}
