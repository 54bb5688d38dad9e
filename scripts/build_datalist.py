"""Write a datalist (6:1:3 split by subject) from BraTS-style subject folders or a CSV mapping.

Usage: python scripts/build_datalist.py --root DIR --modalities t1,t1ce,t2,flair --out datalist.json [--seed 0]
       python scripts/build_datalist.py --csv subjects.csv --modalities t1,t1ce,t2,flair --out datalist.json
Subjects missing a modality are reported and listed under "incomplete", outside the splits; with
--include_incomplete true they go into the splits with null for each missing modality (for late fusion).
"""

import fire

from taco.data import write_datalist
from taco.utils import as_flag


def main(out: str, modalities, root: str | None = None, csv: str | None = None, seed: int = 0,
         label_suffix: str = "seg", include_incomplete=False) -> None:
    """Find the subjects under ``root`` (or in ``csv``), split them with ``seed`` and write ``out``; with
    ``include_incomplete`` the subjects lacking a modality are split too, ``null`` where it is missing."""
    names = modalities.split(",") if isinstance(modalities, str) else list(modalities)
    include = as_flag(include_incomplete, "include_incomplete")
    summary = write_datalist(out, [name.strip() for name in names], root=root, csv_file=csv, seed=int(seed),
                             label_suffix=label_suffix, include_incomplete=include)
    print(f"datalist: {out} {summary.counts()}")
    left_out = {item["subject"] for item in summary.datalist["incomplete"]}
    for subject, missing in summary.incomplete.items():
        where = "left out" if subject in left_out else "in the splits, null for it"
        print(f"incomplete: {subject} lacks {', '.join(missing)} ({where})")


if __name__ == "__main__":
    fire.Fire(main)
