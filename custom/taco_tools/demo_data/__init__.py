"""Demo data: synthetic multi-contrast brain MRI with tumours, built offline from the MNI152 2009 tissue maps.

The demo data is the project's default data set: every README command, test and benchmark runs on it.
Each subject is the MNI152 anatomy under a random smooth deformation (:mod:`.anatomy`,
:mod:`.deformation`), optionally carrying a layered tumour (:mod:`.tumour`), imaged with textbook
spin-echo / inversion-recovery signal equations, a smooth bias field and Rician noise
(:mod:`.mr_physics`), then skull-stripped (0 outside the brain mask) unless asked not to be;
:mod:`.subjects` puts one subject together and :mod:`.dataset` writes a data set (:mod:`.montage`
draws one subject). ``README.md`` in this folder describes the model and the files.

Volumes are arrays of shape ``(X, Y, Z)`` indexed in RAS order (X grows to the subject's right,
Y anteriorly, Z superiorly). At the default 2 mm spacing every labelled subject lies on the same
``(84, 100, 88)`` grid, a fixed 168 x 200 x 176 mm field of view centred on the brain; an unlabelled
subject lies in a random rigid pose (:mod:`.pose`) on a ``(124, 140, 128)`` grid, that field of view
padded by 40 mm on each side.
"""

from taco_tools.demo_data.anatomy import (BRAIN_MASK_MIN_FRACTION, FIELD_OF_VIEW_MM, ReferenceAnatomy, brain_mask,
                                          load_reference_anatomy)
from taco_tools.demo_data.dataset import DATALIST_FILENAME, MONTAGE_FILENAME, generate_demo_dataset, save_subject
from taco_tools.demo_data.deformation import apply_mass_effect, deform_tissue_maps, random_deformation
from taco_tools.demo_data.montage import save_montage
from taco_tools.demo_data.mr_physics import (COMPARTMENTS, LESION_TISSUES, MODALITIES, NORMAL_TISSUES, TISSUES,
                                             add_rician_noise, random_bias_field, simulate_contrasts)
from taco_tools.demo_data.pose import (MAX_POSE_ROTATION_DEGREES, MAX_POSE_TRANSLATION_MM, POSE_PADDING_MM, RigidPose,
                                       posed_grid, random_pose)
from taco_tools.demo_data.random_fields import smooth_random_field
from taco_tools.demo_data.subjects import (GRADE_CYCLE, TISSUE_CLASSES, DemoSubject, assign_splits_and_grades,
                                           subject_name, synthesize_subject, unlabelled_grades)
from taco_tools.demo_data.tumour import LABEL_NAMES, LESION_LABELS, TUMOUR_GRADES, TumourGrade, grow_tumour, insert_lesion

__all__ = ["BRAIN_MASK_MIN_FRACTION", "COMPARTMENTS", "DATALIST_FILENAME", "FIELD_OF_VIEW_MM", "GRADE_CYCLE", "LABEL_NAMES",
           "LESION_LABELS", "LESION_TISSUES", "MAX_POSE_ROTATION_DEGREES", "MAX_POSE_TRANSLATION_MM", "MODALITIES",
           "MONTAGE_FILENAME", "NORMAL_TISSUES", "POSE_PADDING_MM", "TISSUES", "TISSUE_CLASSES", "TUMOUR_GRADES",
           "DemoSubject", "ReferenceAnatomy", "RigidPose", "TumourGrade", "add_rician_noise", "apply_mass_effect",
           "assign_splits_and_grades", "brain_mask", "deform_tissue_maps", "generate_demo_dataset", "grow_tumour",
           "insert_lesion", "load_reference_anatomy", "posed_grid", "random_bias_field", "random_deformation",
           "random_pose", "save_montage", "save_subject", "simulate_contrasts", "smooth_random_field", "subject_name",
           "synthesize_subject", "unlabelled_grades"]
