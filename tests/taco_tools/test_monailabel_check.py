"""The parts of the MONAI Label check that need no monailabel: app folder, studies, label volume checks."""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.monailabel_check import (BUNDLE, CaseGeometry, CheckFailed, bundle_modalities, check_label_volume,
                                         free_port, install_bundle, profile_inference_values, stack_modalities,
                                         stop_server, wait_for_model, write_studies)
from taco_tools.profiles import Profile

SHAPE = (5, 6, 7)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-10.0, 4.0, 1.5]
BUNDLE_ORDER = ["t1", "t1ce", "t2", "flair"]


def save(path: Path, volume: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    image = nib.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


def write_datalist(root: Path, order: list[str], subjects: dict[str, int]) -> Path:
    """A datalist whose images are constant volumes: modality ``m`` of every subject holds ``order.index(m) + 1``
    plus 10 x the subject's position; ``subjects`` maps names to ``class_label``."""
    entries = []
    for position, (name, class_label) in enumerate(subjects.items()):
        (root / name).mkdir(parents=True)
        images = []
        for index, modality in enumerate(order):
            value = index + 1 + 10 * position
            save(root / name / f"{name}_{modality}.nii.gz", np.full(SHAPE, value, np.float32))
            images.append(f"{name}/{name}_{modality}.nii.gz")
        entries.append({"subject": name, "image": images, "class_label": class_label})
    datalist = root / "datalist.json"
    datalist.write_text(json.dumps({"modalities": order, "training": entries[:1], "test": entries}))
    return datalist


def test_bundle_modalities_reads_the_channel_order_of_the_seg_bundle():
    assert bundle_modalities(BUNDLES_DIR / BUNDLE / "configs" / "metadata.json") == BUNDLE_ORDER


def test_bundle_modalities_rejects_metadata_without_channel_def(tmp_path):
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"network_data_format": {"inputs": {"image": {}}}}))
    with pytest.raises(ValueError, match="channel_def"):
        bundle_modalities(metadata)


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


def test_install_bundle_merges_the_profile_into_inference_json(tmp_path):
    app = tmp_path / "app"
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    merged = install_bundle(app, model, profile="micro")

    bundle = app / "model" / BUNDLE
    assert (bundle / "models" / "model.pt").read_bytes() == b"weights"
    assert (bundle / "LICENSE").is_file() and (bundle / "docs" / "README.md").is_file()
    assert (bundle / "configs" / "metadata.json").is_file()
    source = json.loads((BUNDLES_DIR / BUNDLE / "configs" / "inference.json").read_text())
    demo = json.loads((BUNDLES_DIR / BUNDLE / "configs" / "demo.json").read_text())
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    # demo.json's values, then the micro profile's overrides; keys inference.json lacks are not added
    assert inference["feature_size"] == demo["feature_size"] != source["feature_size"]
    assert inference["decoder_norm"] == demo["decoder_norm"] != source["decoder_norm"]
    assert inference["pixdim"] == [6.5, 6.5, 6.5] != demo["pixdim"]
    assert inference["sw_roi_size"] == [32, 32, 32]
    assert "epochs" not in inference and "epochs" not in merged
    assert {key: inference[key] for key in merged} == merged
    unchanged = set(source) - set(merged)
    assert unchanged and all(inference[key] == source[key] for key in unchanged)
    # the source bundle is untouched
    assert json.loads((BUNDLES_DIR / BUNDLE / "configs" / "inference.json").read_text()) == source


def test_install_bundle_needs_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        install_bundle(tmp_path / "app", tmp_path / "missing.pt")


def test_profile_inference_values_needs_the_architecture_keys():
    bare = Profile(name="bare", description="train.json alone", configs={"seg": ("train.json",)})
    with pytest.raises(ValueError, match="'bare'.*'feature_size'"):
        profile_inference_values(bare, {"feature_size": 48})


def label_image(volume: np.ndarray, affine: np.ndarray = AFFINE) -> nib.Nifti1Image:
    return nib.Nifti1Image(volume, affine)


GEOMETRY = CaseGeometry(SHAPE, tuple(tuple(row) for row in AFFINE.tolist()))


def test_check_label_volume_accepts_a_label_map_on_the_case_grid():
    volume = np.zeros(SHAPE, np.uint8)
    volume[1, 1, 1], volume[2, 2, 2], volume[3, 3, 3] = 1, 2, 4
    check = check_label_volume(label_image(volume), GEOMETRY)
    assert check.ok, check.problems
    assert "labels [0, 1, 2, 4]" in check.summary and "affine matches" in check.summary


@pytest.mark.parametrize("volume, affine, problem", [
    (np.zeros((5, 6, 8), np.uint8), AFFINE, "shape (5, 6, 8) != case spatial shape (5, 6, 7)"),
    (np.zeros((*SHAPE, 3), np.uint8), AFFINE, "shape (5, 6, 7, 3)"),
    (np.full(SHAPE, 3, np.uint8), AFFINE, "label values [3] not within"),
    (np.full(SHAPE, 0.5, np.float32), AFFINE, "label values [0.5] not within"),
    (np.zeros(SHAPE, np.uint8), np.eye(4), "affine"),
])
def test_check_label_volume_rejects_a_wrong_label_map(volume, affine, problem):
    check = check_label_volume(label_image(volume, affine), GEOMETRY)
    assert not check.ok
    assert len(check.problems) == 1 and check.problems[0].startswith(problem)


def test_wait_for_model_fails_when_the_server_exits(tmp_path):
    (tmp_path / "server.log").write_text("Traceback: the app did not load\n")
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()
    with pytest.raises(CheckFailed, match="server exited before listing(.|\n)*the app did not load"):
        wait_for_model(f"http://127.0.0.1:{free_port()}", server, tmp_path, timeout=60)


def test_stop_server_ends_the_process_group():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    stop_server(server, grace=5)
    assert server.poll() is not None
