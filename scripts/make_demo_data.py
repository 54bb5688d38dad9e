"""Write the synthetic demo data set (NIfTI volumes, datalist.json, montage.png).

Usage: python scripts/make_demo_data.py --out DIR --subjects N --seed S [--spacing 2.0] [--skull_stripped False]
       [--extra_test K]
"""

import fire

from taco_tools.demo_data import MONTAGE_FILENAME, generate_demo_dataset


def main(out: str, subjects: int = 20, seed: int = 0, spacing: float = 2.0, skull_stripped: bool = True,
         extra_test: int = 0) -> None:
    """Generate ``subjects`` demo subjects with ``seed`` at ``spacing`` mm into ``out``; skull-stripped images
    (background 0) unless ``skull_stripped`` is False (noisy background, brain masks listed as ``brain_mask``);
    ``extra_test`` more labelled subjects in the test split only."""
    datalist = generate_demo_dataset(str(out), num_subjects=int(subjects), seed=int(seed), spacing=float(spacing),
                                     skull_stripped=skull_stripped, num_extra_test=int(extra_test))
    print(f"datalist: {datalist}")
    print(f"montage: {datalist.parent / MONTAGE_FILENAME}")


if __name__ == "__main__":
    fire.Fire(main)
