"""Tooling around the TACO bundles: what a checkout uses, never what a bundle imports when it runs.

``benchmark`` (does pre-training help? the harness), ``demo_data`` (the synthetic brain MRI generator),
``demo`` (the demo's stages), ``profiles`` and ``bundle_command`` (one vocabulary for config profiles and
one ``monai.bundle run`` command line), ``packaging`` (self-contained bundle zips), ``step_timing``
(benchmark helpers), ``results_table`` (reading the bundles' evaluation outputs), ``loss_reference`` (plain
loop versions of the topology losses, to check and time the fast ones against), ``monailabel_check`` (the
segmentation bundle served by a real MONAI Label server). Scripts in ``scripts/`` are their command lines.
The runtime package ``taco`` never imports from here.
"""
