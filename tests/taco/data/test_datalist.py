import json

import pytest

from taco.data import datalist_modalities, load_datalist


@pytest.fixture
def datalist(tmp_path):
    for name in ("a_t1.nii.gz", "a_t2.nii.gz", "a_seg.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    content = {"modalities": ["t1", "t2"],
               "training": [{"subject": "a", "image": ["a_t1.nii.gz", "a_t2.nii.gz"], "label": "a_seg.nii.gz"}]}
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(content))
    return path


def test_relative_paths_resolve_against_the_datalist_folder(datalist):
    (item,) = load_datalist(datalist)
    assert item["image"] == [str(datalist.parent / "a_t1.nii.gz"), str(datalist.parent / "a_t2.nii.gz")]
    assert item["label"] == str(datalist.parent / "a_seg.nii.gz")
    assert datalist_modalities(datalist) == ["t1", "t2"]


def test_other_file_keys_resolve_and_are_checked_where_an_item_has_them(datalist):
    content = json.loads(datalist.read_text())
    content["training"][0]["tissue"] = "a_tissue.nii.gz"
    datalist.write_text(json.dumps(content))
    assert load_datalist(datalist)[0]["tissue"] == "a_tissue.nii.gz"  # not a file key: left as written
    with pytest.raises(FileNotFoundError, match=r"subject 'a', tissue: file not found: .*a_tissue\.nii\.gz"):
        load_datalist(datalist, file_keys=("label", "tissue"))
    (datalist.parent / "a_tissue.nii.gz").write_bytes(b"x")
    (item,) = load_datalist(datalist, file_keys=("label", "tissue", "template_coords"))
    assert item["tissue"] == str(datalist.parent / "a_tissue.nii.gz") and "template_coords" not in item


def test_missing_file_names_subject_modality_and_path(datalist):
    (datalist.parent / "a_t2.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"subject 'a', t2: file not found: .*a_t2\.nii\.gz"):
        load_datalist(datalist)


def test_missing_section_lists_the_sections(datalist):
    with pytest.raises(ValueError, match=r"no non-empty section 'validation' \(sections: \['modalities', 'training'\]\)"):
        load_datalist(datalist, "validation")


def test_missing_required_key(datalist):
    with pytest.raises(ValueError, match=r"subject 'a': missing key 'class_label'"):
        load_datalist(datalist, required_keys=("image", "class_label"))


def test_missing_datalist(tmp_path):
    with pytest.raises(FileNotFoundError, match="datalist not found"):
        load_datalist(tmp_path / "nope.json")


def test_null_modalities_are_kept_as_none(datalist):
    content = json.loads(datalist.read_text())
    content["training"][0]["image"] = [None, "a_t2.nii.gz"]
    datalist.write_text(json.dumps(content))
    (item,) = load_datalist(datalist)
    assert item["image"] == [None, str(datalist.parent / "a_t2.nii.gz")]


def test_several_sections_are_concatenated_in_order(datalist):
    content = json.loads(datalist.read_text())
    content["unlabelled"] = [{"subject": "u", "image": ["a_t1.nii.gz", "a_t2.nii.gz"]}]
    datalist.write_text(json.dumps(content))
    items = load_datalist(datalist, ["unlabelled", "training"])
    assert [item["subject"] for item in items] == ["u", "a"]
    assert items[1] == load_datalist(datalist, "training")[0]
    with pytest.raises(ValueError, match="no non-empty section 'validation'"):
        load_datalist(datalist, ["training", "validation"])
    with pytest.raises(ValueError, match="no section named"):
        load_datalist(datalist, [])
