"""The whole check: model and data, app, studies, server, one inference per case (see the package docstring)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from taco_tools.monailabel_check.app import (SAMPLE_APP, bundle_modalities, download_sample_app, install_bundle,
                                            segment_names)
from taco_tools.monailabel_check.common import BUNDLE, CheckFailed, log
from taco_tools.monailabel_check.labels import check_label_volume
from taco_tools.monailabel_check.server import free_port, infer, start_server, stop_server, wait_for_model
from taco_tools.monailabel_check.studies import write_studies
from taco_tools.profiles import get_profile

__all__ = ["ensure_demo_data", "ensure_model", "run", "run_check"]


def ensure_demo_data(data: Path) -> Path:
    """``<data>/datalist.json``, generating 30 demo subjects (seed 0) there first if it is missing."""
    datalist = data / "datalist.json"
    if not datalist.is_file():
        from taco_tools.demo_data import generate_demo_dataset

        log(f"no {datalist}: generating demo data")
        generate_demo_dataset(data, num_subjects=30, seed=0)
    return datalist


def ensure_model(model: Path, data: Path, profile: str, fusion: str = "early", fusion_mode: str = "mean") -> None:
    """Fine-tune the bundle (``fusion``; ``fusion_mode`` for late fusion) for one epoch with ``profile`` into
    ``model``'s folder if ``model`` is missing.

    ``val_interval`` 1: ``model.pt`` is written by the best-metric checkpointer, i.e. after a validation.
    """
    if model.is_file():
        return
    if model.name != "model.pt":
        raise CheckFailed(f"MODEL {model} is missing (and only a .../model.pt can be trained)")
    keys = {"fusion": fusion, **({"fusion_mode": fusion_mode} if fusion == "late" else {})}
    log(f"no {model}: fine-tuning 1 epoch with the {profile} profile, {keys}, into {model.parent}")
    command = get_profile(profile).command("seg", {"dataset_dir": str(data), "ckpt_dir": str(model.parent), **keys,
                                                   "output_dir": str(model.parent.parent / "runs"),
                                                   "epochs": 1, "val_interval": 1})
    if subprocess.run(command).returncode != 0 or not model.is_file():
        raise CheckFailed(f"training did not write {model}")


def run_check(work: Path, model: Path, data: Path, num_cases: int, port: int, wait_timeout: float,
              infer_timeout: float, profile: str, fusion: str = "early", fusion_mode: str = "mean") -> list[str]:
    """Steps 1-4 of the module docstring in ``work``; one summary line per case."""
    import monai
    import monailabel
    import torch

    log(f"monailabel {monailabel.__version__} | monai {monai.__version__} | torch {torch.__version__} "
        f"| numpy {np.__version__}")
    datalist = ensure_demo_data(data)
    ensure_model(model, data, profile, fusion, fusion_mode)
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
        _, expected = segment_names(app / "model" / BUNDLE / "configs" / "metadata.json")
        if served.get("labels") != expected:
            raise CheckFailed(f"/info/ names the segments {served.get('labels')}, metadata.json {expected}")
        summaries = []
        for name, geometry in cases.items():
            result = work / f"result_{name}.nii.gz"
            seconds = infer(url, name, result, infer_timeout)
            label = nib.load(str(result))
            check = check_label_volume(label, geometry)
            summary = f"{name}: {check.summary}, request {seconds:.1f} s"
            if not check.ok:
                raise CheckFailed(f"{summary}; PROBLEMS: {'; '.join(check.problems)}")
            values = set(np.unique(np.asarray(label.dataobj)).astype(int).tolist())
            unnamed = sorted(values - {0, *expected.values()})
            if unnamed:
                raise CheckFailed(f"{summary}; label values {unnamed} have no segment name in {expected}")
            summary += f", segments {[segment for segment, value in expected.items() if value in values]}"
            log(summary)
            summaries.append(summary)
        return summaries
    finally:
        stop_server(server)


def run(model: str, data: str, cases: int = 2, port: int | None = None, wait_timeout: float = 300,
        infer_timeout: float = 900, keep_work: bool = False, profile: str = "demo", fusion: str = "early",
        fusion_mode: str = "mean") -> None:
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
        fusion: ``early`` or ``late``, for training a missing ``model`` (the bundle's ``fusion`` key); the fusion
            served is read from the weights.
        fusion_mode: ``fusion_mode`` of a late-fusion ``model`` trained here (``mean``, ``mean_var`` or
            ``modality_aware``).

    Exits with status 1 after a FAIL line naming the failed step; the work folder is then kept.
    """
    begin = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="check_monailabel."))
    passed = False
    try:
        summaries = run_check(work, Path(model), Path(data), int(cases), int(port or free_port()),
                              float(wait_timeout), float(infer_timeout), profile, fusion, fusion_mode)
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
