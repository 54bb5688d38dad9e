"""The demo's stages (what ``bash scripts/demo.sh`` runs after installing): see :mod:`taco_tools.demo`.

Usage: python scripts/demo.py [--out demo_output] [--subjects 30] [--profile demo|micro]
"""

import fire

from taco_tools.demo import run_demo

if __name__ == "__main__":
    fire.Fire(run_demo)
