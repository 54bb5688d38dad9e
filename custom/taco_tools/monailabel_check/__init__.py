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

The pure parts (building the app folder, stacking, checking a label volume) need no monailabel. The steps live in their own modules: :mod:`.app`, :mod:`.studies`, :mod:`.server`, :mod:`.labels`, and
:mod:`.check` runs them.
"""

from taco_tools.monailabel_check.app import INFERENCE_PROFILE_KEYS, bundle_modalities, install_bundle, profile_inference_values
from taco_tools.monailabel_check.check import run
from taco_tools.monailabel_check.common import BUNDLE, CheckFailed
from taco_tools.monailabel_check.labels import LABEL_VALUES, LabelCheck, check_label_volume
from taco_tools.monailabel_check.studies import CaseGeometry, stack_modalities, write_studies

__all__ = ["BUNDLE", "INFERENCE_PROFILE_KEYS", "LABEL_VALUES", "CaseGeometry", "CheckFailed", "LabelCheck",
           "bundle_modalities", "check_label_volume", "install_bundle", "profile_inference_values", "run",
           "stack_modalities", "write_studies"]
