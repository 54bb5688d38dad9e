"""TACO: topology-aware cross-instance self-supervised pre-training for 3D multi-modal MRI.

Sub-packages by stage: ``losses`` and ``correspondence`` (the objective), ``networks``,
``transforms``, ``data`` (datalists, datasets, the modality mean image), ``engines`` (pieces for MONAI's ignite workflows),
``evaluation`` (metrics, the missing-modality sweep) and ``utils``. Bundle configs refer to them as ``taco.<package>.<name>``.
Tooling (benchmarks, packaging, demo data generation, checks) lives in the separate ``taco_tools`` package.
"""

from taco import correspondence, data, engines, evaluation, losses, networks, transforms, utils

__version__ = "0.1.0"

__all__ = ["correspondence", "data", "engines", "evaluation", "losses", "networks", "transforms", "utils",
           "__version__"]
