import json
import subprocess
import sys
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest

from taco.data import load_datalist, write_datalist
from taco.transforms import LoadModalitiesd

REPO = Path(__file__).resolve().parents[3]
MODALITIES = ["t1", "t2"]
SIDE = 16


def _volume(seed):
    return np.random.default_rng(seed).integers(1, 100, (SIDE,) * 3).astype(np.int16)


def _write_dicom_series(folder: Path, array: np.ndarray) -> None:
    folder.mkdir()
    image = itk.image_from_array(array)
    writer = itk.ImageSeriesWriter[type(image), itk.Image[itk.SS, 2]].New()
    writer.SetInput(image)
    writer.SetImageIO(itk.GDCMImageIO.New())
    writer.SetFileNames([str(folder / f"slice_{index:03d}.dcm") for index in range(array.shape[0])])
    writer.Update()


def _write(path_stem: Path, array: np.ndarray, extension: str) -> None:
    if extension == "dicom":
        _write_dicom_series(path_stem, array)
    elif extension == ".nii.gz":
        nib.save(nib.Nifti1Image(array, np.eye(4)), f"{path_stem}{extension}")
    elif extension == ".mgz":
        nib.save(nib.MGHImage(array, np.eye(4)), f"{path_stem}{extension}")
    else:
        itk.imwrite(itk.image_from_array(array), f"{path_stem}{extension}")


FORMATS = {"s0": ".nrrd", "s1": ".mha", "s2": "dicom", "s4": ".mgz"}


@pytest.fixture
def brats_root(tmp_path):
    """10 subjects with t1, t2 and a label; s0 NRRD, s1 MetaImage, s2 DICOM series (no label), s4 FreeSurfer MGH,
    s9 lacks t2."""
    root = tmp_path / "brats"
    for index in range(10):
        subject, extension = f"s{index}", FORMATS.get(f"s{index}", ".nii.gz")
        (root / subject).mkdir(parents=True)
        for modality in MODALITIES if index != 9 else MODALITIES[:1]:
            _write(root / subject / f"{subject}_{modality}", _volume(index), extension)
        if extension != "dicom":
            _write(root / subject / f"{subject}_seg", (_volume(index) > 50).astype(np.int16), extension)
    (root / "notes.txt").write_text("not a subject")
    return root


def test_brats_folders_split_6_1_3_with_incomplete_subjects_reported(brats_root, tmp_path, caplog):
    out = tmp_path / "lists" / "datalist.json"
    summary = write_datalist(out, MODALITIES, root=brats_root, seed=3)
    assert summary.counts() == {"training": 5, "validation": 1, "test": 3, "incomplete": 1}
    assert summary.incomplete == {"s9": ["t2"]}
    assert "subject 's9' lacks modalities ['t2']" in caplog.text
    written = json.loads(out.read_text())
    assert written["incomplete"] == [{"subject": "s9", "missing": ["t2"],
                                      "found": {"t1": str(brats_root / "s9" / "s9_t1.nii.gz")}}]
    sections = {section: load_datalist(out, section) for section in ("training", "validation", "test")}
    subjects = [item["subject"] for items in sections.values() for item in items]
    assert sorted(subjects) == [f"s{index}" for index in range(9)]
    by_subject = {item["subject"]: item for items in sections.values() for item in items}
    assert by_subject["s0"]["image"] == [str(brats_root / "s0" / "s0_t1.nrrd"), str(brats_root / "s0" / "s0_t2.nrrd")]
    assert by_subject["s2"]["image"][1] == str(brats_root / "s2" / "s2_t2") and "label" not in by_subject["s2"]
    assert by_subject["s1"]["label"] == str(brats_root / "s1" / "s1_seg.mha")

    def test_subjects(seed):
        return [item["subject"] for item in write_datalist(tmp_path / "d.json", MODALITIES, root=brats_root,
                                                            seed=seed).datalist["test"]]

    assert test_subjects(3) == [item["subject"] for item in written["test"]]
    assert test_subjects(4) != test_subjects(3)


def test_incomplete_subjects_can_join_the_splits_with_null_for_what_they_lack(brats_root, tmp_path, caplog):
    (brats_root / "s10").mkdir()  # no modality at all: never in a split
    default = write_datalist(tmp_path / "default.json", MODALITIES, root=brats_root, seed=3).datalist
    out = tmp_path / "datalist.json"
    summary = write_datalist(out, MODALITIES, root=brats_root, seed=3, include_incomplete=True)
    assert summary.counts() == {"training": 6, "validation": 1, "test": 3, "incomplete": 1}
    assert summary.incomplete == {"s9": ["t2"], "s10": ["t1", "t2"]}
    assert "subject 's9' lacks modalities ['t2']: in the splits, null for them" in caplog.text
    written = json.loads(out.read_text())
    assert [item["subject"] for item in written["incomplete"]] == ["s10"]
    (s9,) = [item for item in written["training"] if item["subject"] == "s9"]
    assert s9["image"] == ["brats/s9/s9_t1.nii.gz", None] and s9["label"].endswith("s9_seg.nii.gz")
    for section in ("training", "validation", "test"):  # the complete subjects keep their split
        assert [item for item in written[section] if item["subject"] != "s9"] == default[section]
    loaded = LoadModalitiesd("image", label_keys="label", modality_names=MODALITIES, mask_key="mask",
                             allow_missing=True)(load_datalist(out, "training")[-1])
    assert loaded["mask"].tolist() == [True, False]
    with pytest.raises(ValueError, match="subject 's9': modality 't2' is missing"):
        LoadModalitiesd("image", modality_names=MODALITIES)(load_datalist(out, "training")[-1])


def test_every_format_loads_through_the_bundles_loader(brats_root, tmp_path):
    out = tmp_path / "datalist.json"
    write_datalist(out, MODALITIES, root=brats_root)
    items = {item["subject"]: item for section in ("training", "validation", "test")
             for item in load_datalist(out, section)}
    for name in ("s0", "s1", "s3", "s4"):  # NRRD, MetaImage, NIfTI, MGH, each with its label
        loaded = LoadModalitiesd("image", label_keys="label", modality_names=MODALITIES)(items[name])
        assert loaded["image"].shape == (2, SIDE, SIDE, SIDE) and loaded["label"].shape == (1, SIDE, SIDE, SIDE)
    assert items["s4"]["image"][0].endswith("s4_t1.mgz")
    dicom = LoadModalitiesd("image", modality_names=MODALITIES, reader="ITKReader")(items["s2"])["image"]
    assert dicom.shape == (2, SIDE, SIDE, SIDE)
    assert sorted(dicom[0].flatten().tolist()) == sorted(_volume(2).flatten().tolist())


def test_csv_mapping(tmp_path):
    for name in ("a", "b", "c"):
        for modality in MODALITIES:
            _write(tmp_path / f"{name}_{modality}", _volume(0), ".nii.gz")
    rows = ["subject,t1,t2,label,class_label", "a,a_t1.nii.gz,a_t2.nii.gz,,1", "b,b_t1.nii.gz,b_t2.nii.gz,,0",
            "c,c_t1.nii.gz,,,1", "d,d_t1.nii.gz,d_t2.nii.gz,,0"]
    (tmp_path / "subjects.csv").write_text("\n".join(rows) + "\n")
    summary = write_datalist(tmp_path / "datalist.json", MODALITIES, csv_file=tmp_path / "subjects.csv")
    assert summary.incomplete == {"c": ["t2"], "d": ["t1", "t2"]}
    assert {item["subject"]: item["class_label"] for item in summary.datalist["training"]} == {"a": 1}
    assert summary.datalist["validation"][0] == {"subject": "b", "image": ["b_t1.nii.gz", "b_t2.nii.gz"],
                                                  "class_label": 0}


@pytest.mark.parametrize("rows, error, message", [
    (["subject,t1", "a,a.nii.gz"], ValueError, r"subjects\.csv: columns \['t2'\] missing"),
    (["subject,t1,t2", "a,x,y", "a,x,y"], ValueError, r"subjects\.csv, line 3: subject 'a' is listed twice"),
    (["subject,t1,t2,label", "a,x,y,a_seg.nii.gz"], FileNotFoundError,
     r"line 2, subject 'a': label file not found: .*a_seg"),
    (["subject,t1,t2,class_label", "a,x,y,high"], ValueError,
     r"line 2, subject 'a': class_label 'high' is not an integer"),
], ids=["column", "duplicate", "label", "class_label"])
def test_bad_csv_names_file_line_and_subject(tmp_path, rows, error, message):
    (tmp_path / "subjects.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(error, match=message):
        write_datalist(tmp_path / "datalist.json", MODALITIES, csv_file=tmp_path / "subjects.csv")


def test_unusable_roots_are_refused(tmp_path):
    with pytest.raises(ValueError, match="exactly one of root"):
        write_datalist(tmp_path / "d.json", MODALITIES)
    with pytest.raises(FileNotFoundError, match="data root not found: .*absent"):
        write_datalist(tmp_path / "d.json", MODALITIES, root=tmp_path / "absent")
    (tmp_path / "s0").mkdir()
    with pytest.raises(ValueError, match=r"none of the 1 subjects .* has every modality .*'s0': \['t1', 't2'\]"):
        write_datalist(tmp_path / "d.json", MODALITIES, root=tmp_path)


def test_script(brats_root, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "build_datalist.py"), "--root", str(brats_root),
                             "--modalities", "t1,t2", "--out", str(tmp_path / "datalist.json"), "--seed", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "'training': 5, 'validation': 1, 'test': 3, 'incomplete': 1" in result.stdout
    assert "incomplete: s9 lacks t2 (left out)" in result.stdout


def test_script_includes_incomplete_subjects_on_request(brats_root, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "build_datalist.py"), "--root", str(brats_root),
                             "--modalities", "t1,t2", "--out", str(tmp_path / "datalist.json"),
                             "--include_incomplete", "true"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "'training': 6, 'validation': 1, 'test': 3, 'incomplete': 0" in result.stdout
    assert "incomplete: s9 lacks t2 (in the splits, null for it)" in result.stdout
