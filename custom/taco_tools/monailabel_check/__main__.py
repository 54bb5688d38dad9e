"""``python -m taco_tools.monailabel_check run ...`` (what ``scripts/check_monailabel.sh`` calls)."""

import fire

from taco_tools.monailabel_check import install_bundle, run, write_studies

fire.Fire({"run": run, "install_bundle": install_bundle, "write_studies": write_studies})
