"""Training data: lung EIT phantoms, MNI152 MRI slices, anomaly phantoms, caching and batching.

Every generator takes an explicit ``jax.random`` key and returns ``(images, info)``:

* :func:`lung_phantoms` -- ``(images, params)``, thorax ventilation images from 8 parameters.
* :func:`clinical_phantoms` -- ``(images, params)``, lung phantoms with any number of anomalies,
  whole-lung / lobar collapse, a pneumothorax crescent, a dorsal effusion (:func:`pathology_masks`);
  :func:`clinical_mixture` -- ``(images, member)``, all of them in equal parts (a training family).
* :func:`ventilation_sequence` -- ``(frames, params)``, tidal breathing with regional delays.
* :func:`mri_slices` -- ``(images, slice_index)``, MNI152 T1 slices, disjoint train/test splits.
* :func:`synthetic_mri` -- ``(images, info)``, domain-randomised brain MR from the ICBM152 maps.
* :func:`volume_slices` -- ``(images, source)``, slices of the user's NIfTI volumes / DICOM series.
* :func:`mri_validation` -- ``(images, names)``, real scans shipped in dipy and nibabel (validation only).
* :func:`anomaly_phantoms` -- ``(images, anomaly_mask)``, disk + rectangle with a small anomaly.
* :func:`rotations` -- one image turned by many angles (the rotated-image manifold).

:func:`cached` stores any of them as ``.npz``; :func:`batches` feeds a jitted train step.
"""

from manifold.data.batching import batches, num_batches
from manifold.data.cache import cache_path, cached, default_cache_dir
from manifold.data.clinical import (
    CLINICAL_MIXTURE,
    CLINICAL_PARAM_RANGES,
    clinical_mixture,
    clinical_param_names,
    clinical_phantom_from_params,
    clinical_phantoms,
    pathology_masks,
    sample_clinical_params,
)
from manifold.data.lung import (
    LUNG_PARAM_NAMES,
    LUNG_PARAM_RANGES,
    LUNG_VALUE_RANGE,
    lung_param_names,
    lung_phantom_from_params,
    lung_phantoms,
    sample_lung_params,
)
from manifold.data.mri import (
    MNI152_T1_FILENAME,
    augment_slices,
    mni152_path,
    mri_slice_indices,
    mri_slices,
    mri_volume,
    split_positions,
)
from manifold.data.shapes import anomaly_phantoms, rotations
from manifold.data.synthetic import CONTRAST_FAMILIES, TISSUES, mri_training_images, synthetic_mri, tissue_volume
from manifold.data.ventilation import (
    VENTILATION_PARAM_NAMES,
    VENTILATION_PARAM_RANGES,
    sample_ventilation_params,
    ventilation_param_names,
    ventilation_sequence,
    ventilation_sequence_from_params,
)
from manifold.data.volumes import VALIDATION_IMAGES, crop_to_anatomy, mri_validation, read_volume, volume_slices

__all__ = [
    # lung EIT phantoms
    "LUNG_PARAM_NAMES",
    "LUNG_PARAM_RANGES",
    "LUNG_VALUE_RANGE",
    "lung_param_names",
    "lung_phantom_from_params",
    "lung_phantoms",
    "sample_lung_params",
    # clinical EIT phantoms and breathing sequences
    "CLINICAL_PARAM_RANGES",
    "CLINICAL_MIXTURE",
    "clinical_mixture",
    "clinical_param_names",
    "clinical_phantom_from_params",
    "clinical_phantoms",
    "pathology_masks",
    "sample_clinical_params",
    "VENTILATION_PARAM_NAMES",
    "VENTILATION_PARAM_RANGES",
    "sample_ventilation_params",
    "ventilation_param_names",
    "ventilation_sequence",
    "ventilation_sequence_from_params",
    # MRI slices
    "MNI152_T1_FILENAME",
    "mni152_path",
    "mri_slice_indices",
    "mri_slices",
    "mri_volume",
    "augment_slices",
    "split_positions",
    # synthetic MR (domain randomised), users' volumes, validation scans
    "CONTRAST_FAMILIES",
    "TISSUES",
    "mri_training_images",
    "synthetic_mri",
    "tissue_volume",
    "VALIDATION_IMAGES",
    "crop_to_anatomy",
    "mri_validation",
    "read_volume",
    "volume_slices",
    # anomaly phantoms and rotations
    "anomaly_phantoms",
    "rotations",
    # caching and batching
    "batches",
    "cache_path",
    "cached",
    "default_cache_dir",
    "num_batches",
]
