"""Loading the modalities of one subject into one channel-first image, with every check named."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, NibabelReader
from monai.transforms import LoadImage, MapTransform

from taco.data.datalist_builder import IMAGE_EXTENSIONS, MGH_EXTENSIONS
from taco.utils.input_errors import InputError, InputFileNotFoundError

__all__ = ["LoadModalitiesd"]


class LoadModalitiesd(MapTransform):
    """Load a subject's modalities, check them, and stack them as channels ``(M, D, H, W)``.

    ``data[key]`` is a list with one 3-D file per modality, or one path to a multi-channel file whose
    volumes are the modalities (the form MONAI Label stores). Every check
    raises an error that names the subject, the modality and the file:

    - a missing file (``FileNotFoundError``) or one the readers cannot open (``ValueError``, listing
      the accepted formats: NIfTI, NRRD, MetaImage, FreeSurfer MGH (``.mgz``, read with nibabel) or a
      DICOM series folder);
    - an image that is not 3-D: a 4-D file with one volume is used as 3-D, more volumes are an error;
    - non-finite voxels (NaN or inf);
    - modalities of one subject with different shapes or affines (they must be co-registered and
      resampled to one grid first).

    A ``None`` entry in the list is a modality the subject lacks. By default that is an error naming the
    subject and the modality (a network with the modalities as input channels needs them all); with
    ``allow_missing=True`` its channel is zeros on the other modalities' grid, and ``mask_key`` records
    which modalities are present. A subject with no modality at all is always an error.

    Files under ``label_keys`` (a segmentation) get the same checks, must be 3-D and must share the
    first image's grid; they are loaded as one-channel images ``(1, D, H, W)``. Files under ``optional_keys``
    (a brain mask) are treated alike when the item has them and skipped when it does not. The modalities keep
    their stored orientation: the bundles reorient to RAS with ``Orientationd`` right after this
    transform, before any resampling or crop (``Invertd`` can undo it there, not here).

    Args:
        keys: keys of the file lists.
        label_keys: keys of single files that must lie on the images' grid (e.g. ``"label"``).
        optional_keys: keys of single files loaded and checked as ``label_keys`` when present (e.g. ``"mask"``).
        subject_key: key of the subject name used in messages.
        modality_names: names of the modalities in list order, used in messages.
        affine_tolerance: largest absolute difference allowed between the modalities' affines (mm).
        num_modalities: if given, the number of channels the stacked image must have (the network's
            input channels); another count is an error naming the subject and its files.
        reader: optional reader passed to ``monai.transforms.LoadImage``.
        mask_key: if given, the output key of the presence mask: ``(M,)`` bool, false for a missing modality
            (all true for a multi-channel file).
        allow_missing: whether ``None`` entries (missing modalities) are accepted (see above).
        allow_missing_keys: as in ``MapTransform``.
    """

    def __init__(self, keys: KeysCollection, label_keys: KeysCollection = (), optional_keys: KeysCollection = (),
                 subject_key: str = "subject",
                 modality_names: Sequence[str] | None = None, affine_tolerance: float = 1e-3,
                 num_modalities: int | None = None, reader: Any = None, mask_key: str | None = None,
                 allow_missing: bool = False, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.allow_missing = allow_missing
        self.label_keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
        self.optional_keys = [optional_keys] if isinstance(optional_keys, str) else list(optional_keys)
        self.subject_key = subject_key
        self.modality_names = list(modality_names) if modality_names else None
        self.affine_tolerance = affine_tolerance
        self.num_modalities = num_modalities
        self.loader = LoadImage(reader=reader, image_only=True, ensure_channel_first=True)
        self.mgh_reader = NibabelReader()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        subject = d.get(self.subject_key, "<unnamed subject>")
        reference = None
        for key in self.key_iterator(d):
            one_file_per_modality = isinstance(d[key], (list, tuple))
            files = list(d[key]) if one_file_per_modality else [d[key]]
            if not files:
                raise InputError(f"subject {subject!r}: {key!r} lists no image files.")
            self._check_missing(files, key, subject)
            volumes = {index: self._load(file, self._modality(index, len(files)), subject, one_file_per_modality)
                       for index, file in enumerate(files) if file is not None}
            first = next(iter(volumes))
            reference = reference or (volumes[first], files[first])
            for index, volume in volumes.items():
                self._check_same_grid(*reference, volume, files[index], subject)
            blank = torch.zeros_like(volumes[first].as_tensor()[:1])
            image = torch.cat([volumes[index].as_tensor() if index in volumes else blank
                               for index in range(len(files))], dim=0)
            if self.num_modalities is not None and image.shape[0] != self.num_modalities:
                raise InputError(f"subject {subject!r}: {key!r} has {image.shape[0]} modalities, the network expects "
                                 f"{self.num_modalities} ({self.modality_names or 'see the config'}); files: {files}.")
            d[key] = MetaTensor(image, meta=dict(volumes[first].meta))  # the meta carries the affine
            # "" for a missing modality: the meta is collated, and None is not collatable
            d[key].meta["modality_files"] = ["" if file is None else str(file) for file in files]
            if self.mask_key is not None:
                d[self.mask_key] = torch.tensor([file is not None for file in files]).repeat_interleave(
                    image.shape[0] // len(files))
        for key in self.label_keys + self.optional_keys:
            if key not in d or d[key] is None:
                if self.allow_missing_keys or key in self.optional_keys:
                    continue
                raise InputError(f"subject {subject!r}: no {key!r} entry (keys: {list(d)}).")
            file = d[key]
            d[key] = self._load(file, str(key), subject, single_volume=True)
            if reference is not None:
                self._check_same_grid(*reference, d[key], file, subject)
        return d

    def _check_missing(self, files: list[Any], key: Hashable, subject: Any) -> None:
        missing = [self._modality(index, len(files)) for index, file in enumerate(files) if file is None]
        if len(missing) == len(files):
            raise InputError(f"subject {subject!r}: every modality is missing ({key!r} lists no file, only "
                             f"null entries: {missing}); at least one is needed.")
        if missing and not self.allow_missing:
            raise InputError(f"subject {subject!r}: modality {missing[0]!r} is missing (null in {key!r}; missing: "
                             f"{missing}); this network takes every modality as an input channel (early fusion): give "
                             "the files, use a late-fusion model (fusion 'late'), or configure a fill for missing "
                             "modalities (the inference config's modality_fill).")

    def _modality(self, index: int, count: int) -> str:
        if self.modality_names is not None and len(self.modality_names) == count:
            return self.modality_names[index]
        return f"modality {index}"

    def _load(self, file: str, modality: str, subject: Any, single_volume: bool) -> MetaTensor:
        where = f"subject {subject!r}, {modality}, file {file}"
        try:
            is_mgh = str(file).lower().endswith(MGH_EXTENSIONS)
            volume = self.loader(file, reader=self.mgh_reader if is_mgh else None)
        except FileNotFoundError as error:
            raise InputFileNotFoundError(f"{where}: file not found.") from error
        except Exception as error:  # the readers raise many types; all mean "cannot read this file"
            reason = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
            raise InputError(f"{where}: cannot be read as an image ({type(error).__name__}: {reason}); accepted "
                             f"formats: {', '.join(IMAGE_EXTENSIONS)} files or a DICOM series folder.") from error
        if volume.ndim != 4:
            raise InputError(f"{where}: expected a 3-D image, got shape {tuple(volume.shape)} after loading.")
        if single_volume and volume.shape[0] != 1:
            raise InputError(f"{where}: expected a 3-D image, got a 4-D image with {volume.shape[0]} volumes.")
        non_finite = int((~torch.isfinite(volume.as_tensor())).sum())
        if non_finite:
            raise InputError(f"{where}: {non_finite} non-finite voxels (NaN or inf).")
        return volume

    def _check_same_grid(self, reference: MetaTensor, reference_file: str, volume: MetaTensor, file: str,
                         subject: Any) -> None:
        if volume.shape[1:] != reference.shape[1:]:
            raise InputError(
                f"subject {subject!r}: images have different shapes, {tuple(reference.shape[1:])} in "
                f"{reference_file} and {tuple(volume.shape[1:])} in {file}; register and resample them "
                "to one grid first.")
        difference = np.abs(np.asarray(volume.affine) - np.asarray(reference.affine)).max()
        if difference > self.affine_tolerance:
            raise InputError(
                f"subject {subject!r}: images have different affines (max difference {difference:.4g}) in "
                f"{reference_file} and {file}; register and resample them to one grid first.")
