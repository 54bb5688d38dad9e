"""Checking that the segmentation bundle serves label maps from a real MONAI Label server.

``scripts/check_monailabel.sh`` installs monailabel into a venv of its own and runs
``python -m taco_tools.monailabel_check run`` there, which:

1. generates the demo data and fine-tunes a model briefly with the demo profile when they are missing;
2. builds a MONAI Label app: the ``monaibundle`` sample app with the bundle under ``model/<bundle>/``
   (the trained weights, and the profile's values merged into ``inference.json``, the one config
   MONAI Label reads);
3. writes the studies: one 4-D NIfTI ``(X, Y, Z, modality)`` per case, since a MONAI Label datastore
   holds one image per case, with the modalities in the channel order of the bundle's ``metadata.json``;
4. starts the server on loopback, waits until it lists the bundle, posts one inference per case and
   checks each returned label volume (the case's shape and affine, values within 0/1/2/4).

The pure parts (building the app folder, stacking, checking a label volume) need no monailabel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from taco_tools.bundle_command import BUNDLES_DIR
from taco_tools.profiles import BUNDLES, Profile, get_profile

__all__ = ["BUNDLE", "INFERENCE_PROFILE_KEYS", "LABEL_VALUES", "CaseGeometry", "CheckFailed", "LabelCheck",
           "bundle_modalities", "check_label_volume", "install_bundle", "profile_inference_values", "run",
           "stack_modalities", "write_studies"]

BUNDLE = BUNDLES["seg"]
"""The bundle MONAI Label serves: the segmentation fine-tuning bundle (its ``inference.json``)."""
LABEL_VALUES = (0, 1, 2, 4)
"""Values of the returned label map: background, necrosis, oedema, enhancing tumour (BraTS)."""
INFERENCE_PROFILE_KEYS = ("roi_size", "pixdim", "feature_size", "decoder_norm", "sw_batch_size")
"""Keys of ``inference.json`` the profile must set, so that the served network and its preprocessing are
those the weights were trained with."""
SAMPLE_APP = "monaibundle"
PREFIX = "[check_monailabel]"


class CheckFailed(RuntimeError):
    """A step of the check failed; the message says which and why."""


def log(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# the app folder
# ---------------------------------------------------------------------------------------------------
def bundle_modalities(metadata_file: str | os.PathLike) -> list[str]:
    """The input channel order of a bundle: the modality named first in each input ``channel_def`` entry.

    ``metadata.json#network_data_format#inputs#image#channel_def`` maps channel index to a description that
    starts with the modality's name (``"1": "T1ce (post-contrast T1), z-scored"`` -> ``"t1ce"``).

    Returns:
        Lower-case modality names in channel order, e.g. ``["t1", "t1ce", "t2", "flair"]``.

    Raises:
        ValueError: the file lacks the ``channel_def``, its indices are not 0..C-1, or an entry names no modality.
    """
    metadata_file = Path(metadata_file)
    metadata = json.loads(metadata_file.read_text())
    try:
        channel_def = metadata["network_data_format"]["inputs"]["image"]["channel_def"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{metadata_file} has no network_data_format#inputs#image#channel_def.") from error
    if sorted(channel_def, key=str) != [str(index) for index in range(len(channel_def))]:
        raise ValueError(f"{metadata_file}: input channel_def keys must be 0..{len(channel_def) - 1}, "
                         f"got {list(channel_def)}.")
    modalities = []
    for index in range(len(channel_def)):
        match = re.match(r"[A-Za-z0-9]+", str(channel_def[str(index)]).strip())
        if match is None:
            raise ValueError(f"{metadata_file}: input channel_def[{index!r}] = {channel_def[str(index)]!r} "
                             "does not start with a modality name.")
        modalities.append(match.group(0).lower())
    return modalities


def profile_inference_values(profile: Profile, inference: Mapping[str, Any], role: str = "seg",
                             required: Sequence[str] = INFERENCE_PROFILE_KEYS,
                             bundles_dir: str | os.PathLike = BUNDLES_DIR) -> dict[str, Any]:
    """The values ``profile`` runs ``role``'s bundle with, for the keys that ``inference`` defines.

    The profile's configs after the first (the workflow config, e.g. ``train.json``, which ``inference.json``
    stands in for) are merged in order, then the profile's overrides.

    Raises:
        ValueError: a ``required`` key is not set by the profile (the profile and the missing keys named).
    """
    configs_dir = Path(bundles_dir) / BUNDLES[role] / "configs"
    values: dict[str, Any] = {}
    for name in profile.configs[role][1:]:
        values.update(json.loads((configs_dir / name).read_text()))
    values.update(profile.overrides.get(role, {}))
    missing = [key for key in required if key not in values]
    if missing:
        raise ValueError(f"profile {profile.name!r} ({list(profile.configs[role][1:])} in {configs_dir}, overrides "
                         f"{profile.overrides.get(role, {})}) does not set {missing}, which inference.json needs.")
    return {key: value for key, value in values.items() if key in inference}


def install_bundle(app: str | os.PathLike, model: str | os.PathLike, profile: str = "demo",
                   bundles_dir: str | os.PathLike = BUNDLES_DIR) -> dict[str, Any]:
    """Put the bundle into a MONAI Label ``monaibundle`` app as ``<app>/model/<bundle>/``.

    Copies the bundle's ``configs/``, ``docs/`` and ``LICENSE``, the weights as ``models/model.pt``, and
    merges ``profile``'s values into ``configs/inference.json`` (MONAI Label reads that file alone).

    Args:
        app: the app folder (holding ``main.py``); the bundle folder is created inside it.
        model: trained weights of the bundle (``model.pt``).
        profile: the profile the weights were trained with (see :mod:`taco_tools.profiles`).
        bundles_dir: folder holding the bundles.

    Returns:
        The values merged into ``inference.json``.
    """
    model = Path(model)
    if not model.is_file():
        raise FileNotFoundError(f"model weights not found: {model}")
    source = Path(bundles_dir) / BUNDLE
    target = Path(app) / "model" / BUNDLE
    (target / "models").mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "configs", target / "configs", dirs_exist_ok=True)
    shutil.copytree(source / "docs", target / "docs", dirs_exist_ok=True)
    shutil.copy2(source / "LICENSE", target / "LICENSE")
    shutil.copy2(model, target / "models" / "model.pt")
    inference_file = target / "configs" / "inference.json"
    inference = json.loads(inference_file.read_text())
    merged = profile_inference_values(get_profile(profile), inference, bundles_dir=bundles_dir)
    inference.update(merged)
    inference_file.write_text(json.dumps(inference, indent=4))
    return merged


# ---------------------------------------------------------------------------------------------------
# the studies
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseGeometry:
    """Spatial shape ``(X, Y, Z)`` and 4 x 4 affine of a case: what its returned label volume must have."""

    shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict[str, list]:
        return {"shape": list(self.shape), "affine": [list(row) for row in self.affine]}


def stack_modalities(files: Sequence[str | os.PathLike], out: str | os.PathLike) -> CaseGeometry:
    """Write the 3-D images ``files`` as one 4-D NIfTI ``(X, Y, Z, C)`` (float32), channel ``c`` = ``files[c]``.

    The 4-D image keeps the first image's affine and spatial units.

    Raises:
        ValueError: an image is not 3-D, or its shape or affine differs from the first one (file and values named).
    """
    if not files:
        raise ValueError(f"no images to stack into {out}.")
    images = [nib.load(str(file)) for file in files]
    first = images[0]
    for image, file in zip(images, files):
        if image.ndim != 3:
            raise ValueError(f"{file}: expected a 3-D image, got shape {image.shape}.")
        if image.shape != first.shape:
            raise ValueError(f"{file}: shape {image.shape} differs from {files[0]}'s {first.shape}.")
        if not np.allclose(image.affine, first.affine):
            raise ValueError(f"{file}: affine {image.affine.tolist()} differs from {files[0]}'s {first.affine.tolist()}.")
    stacked = np.stack([np.asarray(image.dataobj, dtype=np.float32) for image in images], axis=-1)
    out_image = nib.Nifti1Image(stacked, first.affine)
    out_image.header.set_xyzt_units(*first.header.get_xyzt_units())
    nib.save(out_image, str(out))
    return CaseGeometry(tuple(int(size) for size in first.shape), tuple(tuple(map(float, row)) for row in first.affine))


def write_studies(datalist: str | os.PathLike, studies: str | os.PathLike, modalities: Sequence[str],
                  num_cases: int = 2) -> dict[str, CaseGeometry]:
    """Write ``num_cases`` subjects of ``datalist`` as 4-D NIfTI files ``<studies>/<subject>.nii.gz``.

    Subjects come from the first non-empty of ``test``, ``validation`` and ``training``, those with an
    enhancing tumour (``class_label`` 1) first so that the prediction has something to find. Channel ``c``
    is the datalist's image of ``modalities[c]`` (the bundle's channel order, which may differ from the
    datalist's ``modalities`` order).

    Returns:
        ``{subject: its geometry}``, in the order written.

    Raises:
        ValueError: a modality is not in the datalist's ``modalities``, no section has subjects, or an
            image's file name does not contain its modality's name.
    """
    datalist = Path(datalist)
    content = json.loads(datalist.read_text())
    listed = [str(name).lower() for name in content.get("modalities", [])]
    absent = [name for name in modalities if name not in listed]
    if absent:
        raise ValueError(f"datalist {datalist}: modalities {absent} of the bundle are not in its 'modalities' {listed}.")
    section = next((key for key in ("test", "validation", "training") if content.get(key)), None)
    if section is None:
        raise ValueError(f"datalist {datalist} has no subjects under 'test', 'validation' or 'training'.")
    subjects = sorted(content[section], key=lambda subject: -int(subject.get("class_label", 0)))[:num_cases]
    Path(studies).mkdir(parents=True, exist_ok=True)
    cases = {}
    for subject in subjects:
        name = subject["subject"]
        files = [datalist.parent / subject["image"][listed.index(modality)] for modality in modalities]
        for modality, file in zip(modalities, files):
            if modality not in file.name.lower():
                raise ValueError(f"datalist {datalist}, subject {name!r}: {file} is not the {modality} image.")
        cases[name] = stack_modalities(files, Path(studies) / f"{name}.nii.gz")
    return cases


# ---------------------------------------------------------------------------------------------------
# the returned label volume
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelCheck:
    """What a returned label volume holds (``summary``) and what is wrong with it (``problems``, empty if nothing)."""

    summary: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_label_volume(label: nib.Nifti1Image, expected: CaseGeometry,
                       values: Sequence[int] = LABEL_VALUES) -> LabelCheck:
    """Check a label volume returned for a case: the case's spatial shape and affine, values within ``values``.

    Args:
        label: the returned image, ``(X, Y, Z)``.
        expected: the case's geometry (see :func:`stack_modalities`).
        values: the allowed label values.
    """
    found, counts = np.unique(np.asarray(label.dataobj), return_counts=True)
    problems = []
    if tuple(label.shape) != tuple(expected.shape):
        problems.append(f"shape {tuple(label.shape)} != case spatial shape {tuple(expected.shape)}")
    if not set(found.tolist()) <= set(values):
        problems.append(f"label values {found.tolist()} not within {set(values)}")
    affine_matches = label.affine.shape == (4, 4) and np.allclose(label.affine, expected.affine, atol=1e-3)
    if not affine_matches:
        problems.append(f"affine {label.affine.tolist()} != case affine {[list(row) for row in expected.affine]}")
    voxels = ", ".join(f"{value:g}: {count}" for value, count in zip(found.tolist(), counts.tolist()))
    summary = (f"shape {tuple(label.shape)}, labels [{', '.join(f'{value:g}' for value in found.tolist())}] "
               f"(voxels {voxels}), affine {'matches' if affine_matches else 'DIFFERS'}")
    return LabelCheck(summary, tuple(problems))


# ---------------------------------------------------------------------------------------------------
# model and data, the server
# ---------------------------------------------------------------------------------------------------
def ensure_demo_data(data: Path) -> Path:
    """``<data>/datalist.json``, generating 30 demo subjects (seed 0) there first if it is missing."""
    datalist = data / "datalist.json"
    if not datalist.is_file():
        from taco_tools.demo_data import generate_demo_dataset

        log(f"no {datalist}: generating demo data")
        generate_demo_dataset(data, num_subjects=30, seed=0)
    return datalist


def ensure_model(model: Path, data: Path, profile: str) -> None:
    """Fine-tune the bundle for one epoch with ``profile`` into ``model``'s folder if ``model`` is missing.

    ``val_interval`` 1: ``model.pt`` is written by the best-metric checkpointer, i.e. after a validation.
    """
    if model.is_file():
        return
    if model.name != "model.pt":
        raise CheckFailed(f"MODEL {model} is missing (and only a .../model.pt can be trained)")
    log(f"no {model}: fine-tuning 1 epoch with the {profile} profile into {model.parent}")
    command = get_profile(profile).command("seg", {"dataset_dir": str(data), "ckpt_dir": str(model.parent),
                                                   "output_dir": str(model.parent.parent / "runs"),
                                                   "epochs": 1, "val_interval": 1})
    if subprocess.run(command).returncode != 0 or not model.is_file():
        raise CheckFailed(f"training did not write {model}")


def download_sample_app(work: Path, bin_dir: Path) -> Path:
    """Copy the ``monaibundle`` sample app installed with monailabel to ``<work>/apps/`` (no network)."""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(bin_dir / "monailabel"), "apps", "--download", "--name", SAMPLE_APP,
                             "--output", str(work / "apps")], cwd=work, env=env, capture_output=True, text=True)
    app = work / "apps" / SAMPLE_APP
    if result.returncode != 0 or not (app / "main.py").is_file():
        raise CheckFailed(f"monailabel apps --download gave no app at {app}:\n{result.stdout}{result.stderr}")
    return app


TORCHVISION_STUB = {
    "__init__.py": '"""Stub: the installed torch has no matching CPU torchvision; only ``import torchvision.utils`` '
                   'works."""\n__version__ = "0.0.0+stub"\n',
    "utils.py": "".join(f"\n\ndef {name}(*args, **kwargs):\n    raise RuntimeError(\"torchvision stub "
                        f"(taco_tools.monailabel_check): {name} is not available\")\n"
                        for name in ("make_grid", "save_image")).lstrip(),
}
"""``monailabel.transform.post`` imports ``torchvision.utils`` (``make_grid``/``save_image``, used only by its
2-D debug-dump transform and DeepEdit handlers). No CPU torchvision exists for every CPU torch, so when it
does not import, this stub, which raises on use, goes first on the server's ``PYTHONPATH``."""


def server_environment(work: Path, bin_dir: Path) -> dict[str, str]:
    """The server's environment: the venv first on ``PATH``, and the torchvision stub if torchvision does not import."""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "MONAILABEL_PYEXE": sys.executable}
    if subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode != 0:
        stub = work / "shim" / "torchvision"
        stub.mkdir(parents=True, exist_ok=True)
        for name, text in TORCHVISION_STUB.items():
            (stub / name).write_text(text)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
        log(f"torchvision does not import in {sys.prefix}: using a stub torchvision.utils for the server")
    return env


def start_server(work: Path, bin_dir: Path, app: Path, studies: Path, port: int) -> subprocess.Popen:
    """Start ``monailabel start_server`` on 127.0.0.1 in its own session (so that its process group can be
    stopped), logging to ``<work>/server.log``.

    ``zoo_source`` anything but ``monaihosting`` makes the app use the local bundle folder without asking
    the network for the model zoo's bundle list.
    """
    with open(work / "server.log", "wb") as server_log:
        return subprocess.Popen(
            [str(bin_dir / "monailabel"), "start_server", "--app", str(app), "--studies", str(studies),
             "--conf", "models", BUNDLE, "--conf", "zoo_source", "github", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work, env=server_environment(work, bin_dir), stdout=server_log, stderr=subprocess.STDOUT,
            start_new_session=True)


def stop_server(server: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if server.poll() is not None:
            return
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            pass


def server_log_tail(work: Path, lines: int = 60) -> str:
    path = work / "server.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def wait_for_model(url: str, server: subprocess.Popen, work: Path, timeout: float) -> dict[str, Any]:
    """Poll ``<url>/info/`` until it lists the bundle; the ``/info/`` answer.

    Raises:
        CheckFailed: the server exited, or did not list the bundle within ``timeout`` seconds (log tail included).
    """
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/info/", timeout=10) as response:
                info = json.load(response)
            if BUNDLE in info.get("models", {}):
                return info
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if server.poll() is not None:
            raise CheckFailed(f"server exited before listing {BUNDLE}:\n{server_log_tail(work)}")
        if time.monotonic() - start > timeout:
            raise CheckFailed(f"server did not list {BUNDLE} within {timeout} s:\n{server_log_tail(work)}")
        time.sleep(2)


def infer(url: str, case: str, out: Path, timeout: float) -> float:
    """``POST <url>/infer/<bundle>?image=<case>&output=image`` (the body is the label file) into ``out``.

    Returns:
        The request's duration in seconds.

    Raises:
        CheckFailed: the answer is not HTTP 200 (its start included).
    """
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{{}}\r\n'
            f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{url}/infer/{BUNDLE}?image={case}&output=image", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            out.write_bytes(response.read())
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"POST /infer/{BUNDLE}?image={case} returned HTTP {error.code}: "
                          f"{error.read()[:2000].decode(errors='replace')}") from error
    except (urllib.error.URLError, OSError) as error:
        raise CheckFailed(f"POST /infer/{BUNDLE}?image={case} failed: {error}") from error
    return time.monotonic() - start


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------------
def run_check(work: Path, model: Path, data: Path, num_cases: int, port: int, wait_timeout: float,
              infer_timeout: float, profile: str) -> list[str]:
    """Steps 1-4 of the module docstring in ``work``; one summary line per case."""
    import monai
    import monailabel
    import torch

    log(f"monailabel {monailabel.__version__} | monai {monai.__version__} | torch {torch.__version__} "
        f"| numpy {np.__version__}")
    datalist = ensure_demo_data(data)
    ensure_model(model, data, profile)
    log(f"model: {model}")
    log(f"data : {data}")

    bin_dir = Path(sys.executable).parent
    app = download_sample_app(work, bin_dir)
    merged = install_bundle(app, model, profile)
    log(f"inference.json + {profile} profile: {json.dumps(merged)}")
    modalities = bundle_modalities(app / "model" / BUNDLE / "configs" / "metadata.json")
    cases = write_studies(datalist, work / "studies", modalities, num_cases)
    (work / "cases.json").write_text(json.dumps({name: geometry.to_json() for name, geometry in cases.items()}))
    for name, geometry in cases.items():
        log(f"case {name}: {len(modalities)} modalities {modalities} -> {(*geometry.shape, len(modalities))}")

    # MONAI Label's infer task (monailabel/tasks/infer/bundle.py + basic_infer.py) runs the bundle's
    # `preprocessing` transforms one by one on {"image": <path>, "image_path": <path>, ...}, the `inferer`,
    # then `postprocessing` without SaveImaged plus its own Restored, and writes `pred` with its Writer.
    url = f"http://127.0.0.1:{port}"
    log(f"starting MONAI Label on {url}")
    server = start_server(work, bin_dir, app, work / "studies", port)
    try:
        start = time.monotonic()
        info = wait_for_model(url, server, work, wait_timeout)
        served = info["models"][BUNDLE]
        log(f"/info/ after the server came up: models {list(info['models'])}, trainers "
            f"{list(info.get('trainers', {}))}; {BUNDLE}: type {served.get('type')}, labels {served.get('labels')}, "
            f"version {served.get('version')}")
        log(f"server ready after {time.monotonic() - start:.0f} s")
        summaries = []
        for name, geometry in cases.items():
            result = work / f"result_{name}.nii.gz"
            seconds = infer(url, name, result, infer_timeout)
            check = check_label_volume(nib.load(str(result)), geometry)
            summary = f"{name}: {check.summary}, request {seconds:.1f} s"
            if not check.ok:
                raise CheckFailed(f"{summary}; PROBLEMS: {'; '.join(check.problems)}")
            log(summary)
            summaries.append(summary)
        return summaries
    finally:
        stop_server(server)


def run(model: str, data: str, cases: int = 2, port: int | None = None, wait_timeout: float = 300,
        infer_timeout: float = 900, keep_work: bool = False, profile: str = "demo") -> None:
    """Check that the segmentation bundle serves label maps from a real MONAI Label server (in monailabel's venv).

    Args:
        model: trained weights; fine-tuned briefly with ``profile`` if missing (then it must be a ``model.pt``).
        data: demo data folder with ``datalist.json``; generated if missing.
        cases: number of cases to put in the datastore and infer.
        port: server port on 127.0.0.1 (default: a free one).
        wait_timeout: seconds to wait for the server to list the model.
        infer_timeout: seconds allowed per inference request.
        keep_work: keep the work folder (app, studies, server log, results) also after a PASS.
        profile: the profile ``model`` was (or is) trained with.

    Exits with status 1 after a FAIL line naming the failed step; the work folder is then kept.
    """
    begin = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="check_monailabel."))
    passed = False
    try:
        summaries = run_check(work, Path(model), Path(data), int(cases), int(port or free_port()),
                              float(wait_timeout), float(infer_timeout), profile)
        passed = True
        import monailabel

        log(f"PASS {BUNDLE} served by MONAI Label {monailabel.__version__} ({SAMPLE_APP} app): "
            f"{'; '.join(summaries)} | total {time.monotonic() - begin:.0f} s")
    except (CheckFailed, ValueError, FileNotFoundError) as error:
        log(f"FAIL {error} ({time.monotonic() - begin:.0f} s)")
    finally:
        if passed and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work dir kept: {work} (server log: {work / 'server.log'})")
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    import fire

    fire.Fire({"run": run, "install_bundle": install_bundle, "write_studies": write_studies})
