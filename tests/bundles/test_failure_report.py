"""Every input the bundles refuse, through the real command line: its output ends with the refusal.

One command per bad input, as a user types it (``python -m monai.bundle run``, ``torchrun``, and a
packaged bundle zip). Each costs about 13 s of start-up, most of it importing monai, and fails on the
first subject it reads; they run side by side, as many at a time as there are CPU cores.
"""

import gzip
import json
import os
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from taco.utils.error_report import RULE
from taco_tools.bundle_command import bundle_command
from taco_tools.packaging import package_bundle
from tests.bundles.conftest import BUNDLES


@dataclass
class Case:
    """A bad input and how a user would run into it."""

    bundle: str
    configs: list[str]
    expected: str
    """a regular expression the last lines of the output must match: the file or key and the problem"""
    launcher: str = "python"
    """``python`` (``python -m monai.bundle run``), ``torchrun`` (2 CPU processes) or ``zip`` (packaged bundle)"""
    overrides: dict = field(default_factory=dict)

    @property
    def stage(self) -> str:
        """What the report calls the run (a regular expression): the stage its configs give to
        ``install_failure_report``, and under torchrun which process of how many reports."""
        return r"train, process \d of 2" if "multi_gpu_train.json" in self.configs else \
            "evaluate" if "evaluate.json" in self.configs else "train"


TRAIN = ["train.json", "demo.json"]
EVALUATE = ["train.json", "demo.json", "evaluate.json"]
CASES = {
    "missing_file": Case("taco_seg_finetune", TRAIN, r"subject 'demo_\d+', t1ce: file not found: .*gone\.nii\.gz$"),
    "corrupt_file": Case("taco_seg_finetune", TRAIN, r"t1, file .*corrupt\.nii\.gz: cannot be read as an image"),
    # filled into a CacheDataset by its threads
    "truncated_file": Case("taco_seg_finetune", EVALUATE, r"t2, file .*truncated\.nii\.gz: cannot be read as an image"),
    # read in a DataLoader worker process
    "2d_image": Case("taco_seg_finetune", EVALUATE, r"flair, file .*flat\.nii\.gz: expected a 3-D image, got shape",
                     overrides={"dataset_type": "plain", "num_workers": 1}),
    "4d_image": Case("taco_cls_finetune", TRAIN, r"t1, file .*two_volumes\.nii\.gz: expected a 3-D image, got a 4-D "
                                                 r"image with 2 volumes"),
    "non_finite_voxels": Case("taco_pretrain", TRAIN, r"modality 0, file .*nan\.nii\.gz: 1 non-finite voxels \(NaN "
                                                                r"or inf\)"),
    "shape_mismatch": Case("taco_seg_finetune", TRAIN, r"images have different shapes, .* in .*_t1\.nii\.gz and "
                                                       r".* in .*thin\.nii\.gz; register and resample", launcher="zip"),
    "affine_mismatch": Case("taco_seg_finetune", TRAIN + ["multi_gpu_train.json"],
                            r"images have different affines .* in .*_t1\.nii\.gz and .*shifted\.nii\.gz",
                            launcher="torchrun"),
    "label_values": Case("taco_seg_finetune", TRAIN, r"'label' \(.*labels_3\.nii\.gz\) holds label values \[3\] "
                                                     r"outside the mapping .*; set 'regions'"),
    "modality_count": Case("taco_missing_modality_eval", ["evaluate.json", "demo.json"],
                           r"subject 'demo_\d+': 'image' has 3 modalities, the network expects 4"),
    "pickled_checkpoint": Case("taco_seg_finetune", EVALUATE, r"refused to load .*model\.pt: it holds pickled Python "
                                                              r"objects"),
    "other_architecture": Case("taco_cls_finetune", EVALUATE,
                               r".*model\.pt does not fit the network TokenMILClassifier: the file holds a network "
                               r"without classification head \(a segmentation model\?\)"),
    "malformed_datalist": Case("taco_pretrain", TRAIN, r"datalist .*datalist\.json is not valid JSON"),
}


def write_image(path: Path, array: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), affine), path)
    return str(path)


def demo_network_weights(bundle: str) -> dict:
    """A state_dict of ``bundle``'s network in its demo profile (random weights)."""
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / bundle / "configs" / name) for name in TRAIN])
    return parser.get_parsed_content("network_def").state_dict()


def break_input(name: str, folder: Path, demo_datalist: Path) -> dict:
    """Write case ``name``'s bad input into ``folder``; the overrides that point the bundle at it."""
    datalist = json.loads(demo_datalist.read_text())
    for section in ("training", "validation", "test"):
        for item in datalist[section]:
            item["image"] = [str(demo_datalist.parent / file) for file in item["image"]]
            item["label"] = str(demo_datalist.parent / item["label"])
    training, test = datalist["training"][0], datalist["test"][0]
    t1 = nib.load(training["image"][0])
    volume, affine = t1.get_fdata(), t1.affine
    models = folder / "models"
    models.mkdir()
    overrides = {"dataset_dir": folder, "bundle_root": folder}
    if name == "missing_file":
        training["image"][1] = str(folder / "gone.nii.gz")
    elif name == "corrupt_file":
        training["image"][0] = str(folder / "corrupt.nii.gz")
        (folder / "corrupt.nii.gz").write_bytes(gzip.compress(b"not an image"))
    elif name == "truncated_file":
        whole = Path(test["image"][2]).read_bytes()
        (folder / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
        test["image"][2] = str(folder / "truncated.nii.gz")
        torch.save(demo_network_weights("taco_seg_finetune"), models / "model.pt")
    elif name == "2d_image":
        test["image"][3] = write_image(folder / "flat.nii.gz", volume[:, :, 0], affine)
        torch.save(demo_network_weights("taco_seg_finetune"), models / "model.pt")
    elif name == "4d_image":
        training["image"][0] = write_image(folder / "two_volumes.nii.gz", np.stack([volume, volume], -1), affine)
    elif name == "non_finite_voxels":
        volume[10, 10, 10] = np.nan
        training["image"][0] = write_image(folder / "nan.nii.gz", volume, affine)
    elif name == "shape_mismatch":
        training["image"][2] = write_image(folder / "thin.nii.gz", volume[:, :, 1:], affine)
    elif name == "affine_mismatch":
        shifted = affine.copy()
        shifted[0, 3] += 5.0
        training["image"][1] = write_image(folder / "shifted.nii.gz", volume, shifted)
    elif name == "label_values":
        label = nib.load(training["label"])
        values = np.asarray(label.dataobj).copy()
        values[10, 10, 10] = 3
        training["label"] = write_image(folder / "labels_3.nii.gz", values, label.affine)
    elif name == "modality_count":
        test["image"] = test["image"][:3]
        torch.save(demo_network_weights("taco_seg_finetune"), models / "model.pt")
        overrides.update(finetuned_bundle_root=BUNDLES / "taco_seg_finetune", ckpt_dir=models)
    elif name == "pickled_checkpoint":
        torch.save({"weights": demo_network_weights("taco_seg_finetune"), "made_by": object}, models / "model.pt")
    elif name == "other_architecture":
        torch.save(demo_network_weights("taco_seg_finetune"), models / "model.pt")
    (folder / "datalist.json").write_text(json.dumps(datalist, indent=1))
    if name == "malformed_datalist":
        text = (folder / "datalist.json").read_text()
        (folder / "datalist.json").write_text(text[: len(text) // 2])
    return overrides


def unzipped_bundle(bundle: str, folder: Path) -> Path:
    """``bundle`` as its packaged zip holds it, unzipped into ``folder``."""
    with zipfile.ZipFile(package_bundle(BUNDLES / bundle, folder / "dist")) as zipped:
        zipped.extractall(folder / "unzipped")
    return folder / "unzipped" / bundle


def command(case: Case, overrides: dict, folder: Path, bundle_command_line) -> tuple[list[str], dict]:
    """The command line of ``case`` and its environment."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    overrides = {**overrides, **case.overrides}
    if case.launcher == "python":
        return bundle_command_line(case.bundle, case.configs, **overrides), environment
    if case.launcher == "torchrun":
        line = bundle_command_line(case.bundle, case.configs, **overrides)
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *line[1:]], \
            environment
    root = unzipped_bundle(case.bundle, folder)  # its configs import the taco copy in <bundle_root>/scripts
    environment.pop("PYTHONPATH", None)
    overrides["bundle_root"] = root
    return list(bundle_command(case.bundle, case.configs, overrides, bundles_dir=root.parent)), environment


@pytest.fixture(scope="module")
def outputs(request, demo_datalist, bundle_command_line, tmp_path_factory):
    """``{case: future of its finished process}`` (stdout and stderr as one stream, as a terminal shows them) for
    the cases selected in this session, prepared one after the other and run side by side."""
    selected = sorted(item.callspec.params["case"] for item in request.session.items if item.module is request.module
                      and "case" in getattr(getattr(item, "callspec", None), "params", {}))
    runs = {}
    for name in selected:
        folder = tmp_path_factory.mktemp(name)
        line, environment = command(CASES[name], break_input(name, folder, demo_datalist), folder, bundle_command_line)
        runs[name] = {"args": line, "env": environment, "cwd": folder}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield {name: pool.submit(subprocess.run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 timeout=600, **run) for name, run in runs.items()}


def last_lines(output: str, count: int) -> list[str]:
    return [line for line in output.split("\n") if line.strip()][-count:]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_refusal_is_the_last_thing_printed(outputs, case):
    finished = outputs[case].result()
    output = finished.stdout
    assert finished.returncode != 0, output[-3000:]
    spec = CASES[case]
    if spec.launcher == "torchrun":
        # torchrun's closing summary quotes the failed worker's report as the traceback of the root cause
        header, message, border = last_lines(output, 3)
        assert re.fullmatch(r"=+", border) and header.startswith("  traceback : "), output[-3000:]
        header, message = header.removeprefix("  traceback : "), message.removeprefix("  ")
    else:
        rule, header, message = last_lines(output, 3)
        assert rule == RULE, output[-3000:]
    assert re.fullmatch(re.escape(f"{spec.bundle} (") + spec.stage + re.escape(
        ") stopped: an input was refused (the traceback above is for developers)."), header), output[-3000:]
    assert re.search(spec.expected, message), output[-3000:]
    assert "Traceback (most recent call last):" in output  # for developers, above the report
    if spec.launcher == "zip":
        assert f"/unzipped/{spec.bundle}/scripts/taco/transforms/loading.py" in output  # the vendored copy ran
