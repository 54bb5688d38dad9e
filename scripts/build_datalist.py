"""Write a datalist (6:1:3 split by subject) from BraTS-style subject folders or a CSV mapping.

Usage: python scripts/build_datalist.py --root DIR --modalities t1,t1ce,t2,flair --out datalist.json [--seed 0]
       python scripts/build_datalist.py --csv subjects.csv --modalities t1,t1ce,t2,flair --out datalist.json
Subjects missing a modality are reported and listed under "incomplete", outside the splits.
"""

import fire

from taco.data import write_datalist


def main(out: str, modalities, root: str | None = None, csv: str | None = None, seed: int = 0,
         label_suffix: str = "seg") -> None:
    """Find the subjects under ``root`` (or in ``csv``), split them with ``seed`` and write ``out``."""
    names = modalities.split(",") if isinstance(modalities, str) else list(modalities)
    summary = write_datalist(out, [name.strip() for name in names], root=root, csv_file=csv, seed=int(seed),
                             label_suffix=label_suffix)
    print(f"datalist: {out} {summary.counts()}")
    for subject, missing in summary.incomplete.items():
        print(f"incomplete: {subject} lacks {', '.join(missing)}")


if __name__ == "__main__":
    fire.Fire(main)
