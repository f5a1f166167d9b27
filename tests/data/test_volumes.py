"""volume_slices on NIfTI and DICOM files the tests write themselves; mri_validation; crop_to_anatomy."""

import jax
import nibabel
import numpy as np
import pytest

from manifold.data import crop_to_anatomy, mri_validation, read_volume, volume_slices


def _phantom_volume(shape=(20, 24, 30), seed=0):
    """A bright ellipsoid with a dark core, in RAS voxel axes."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij")
    r = (x / 0.8) ** 2 + (y / 0.7) ** 2 + (z / 0.9) ** 2
    vol = np.where(r < 1, 100.0, 0.0) - np.where(r < 0.2, 60.0, 0.0)
    return (vol + np.random.default_rng(seed).uniform(0, 1, shape)).astype(np.float32)


def _write_nifti(path, vol, affine=None):
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4) if affine is None else affine), path)


def _write_dicom_series(folder, vol):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    series = generate_uid()
    order = np.random.default_rng(1).permutation(vol.shape[2])  # files written out of order
    for i in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR image storage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"im{i:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.Modality = "MR"
        ds.Rows, ds.Columns = vol.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, float(i) * 2.0]
        ds.InstanceNumber = int(i) + 1
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, 0.0
        ds.PixelData = np.ascontiguousarray(vol[:, :, i] * 2).astype(np.uint16).tobytes()
        ds.save_as(folder / f"im{i:03d}.dcm", enforce_file_format=True)
    return pydicom


def test_nifti_folder_slices(tmp_path):
    _write_nifti(tmp_path / "a.nii.gz", _phantom_volume(seed=0))
    _write_nifti(tmp_path / "b.nii", _phantom_volume(seed=1))
    images, source = volume_slices(tmp_path, size=16)
    assert images.shape[1:] == (16, 16) and images.dtype == np.float32
    assert set(source[:, 0].tolist()) == {0, 1}
    x = np.asarray(images)
    np.testing.assert_allclose(x.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(x.max(axis=(1, 2)), 1.0, atol=1e-5)
    # central slices show the dark core: the centre pixel is darker than the ring around it
    mid = np.argmin(np.abs(source[:, 1] - 15) + 100 * source[:, 0])
    assert x[mid, 8, 8] < x[mid, 8, 3]


def test_splits_are_disjoint_and_augment_is_seeded(tmp_path):
    _write_nifti(tmp_path / "a.nii.gz", _phantom_volume(shape=(20, 24, 60)))
    _, train = volume_slices(tmp_path, size=16, split="train")
    _, test = volume_slices(tmp_path, size=16, split="test")
    assert len(train) and len(test)
    assert not set(map(tuple, train.tolist())) & set(map(tuple, test.tolist()))
    assert np.min(np.abs(train[:, 1][:, None] - test[:, 1][None])) >= 3
    a, _ = volume_slices(tmp_path, size=16, split="train", n=10, key=jax.random.key(0), augment=True)
    b, _ = volume_slices(tmp_path, size=16, split="train", n=10, key=jax.random.key(0), augment=True)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.shape == (10, 16, 16)


def test_axis_and_reorientation(tmp_path):
    """A volume stored in LAS order gives the same axial slices as its RAS copy."""
    vol = _phantom_volume()
    _write_nifti(tmp_path / "ras.nii", vol)
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    flipped[0, 3] = vol.shape[0] - 1
    other = tmp_path / "other"
    other.mkdir()
    _write_nifti(other / "las.nii", vol[::-1].copy(), flipped)
    a, _ = volume_slices(tmp_path / "ras.nii", size=16, axis="coronal")
    b, _ = volume_slices(other, size=16, axis="coronal")
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_dicom_series(tmp_path):
    vol = _phantom_volume(shape=(24, 24, 12))
    _write_dicom_series(tmp_path / "series", vol)
    stacked = read_volume(tmp_path / "series")
    assert stacked.shape == (24, 24, 12)
    # sorted by position, rescaled back to the stored values (uint16 rounding only)
    np.testing.assert_allclose(stacked, np.floor(vol * 2) * 0.5, atol=1e-4)
    images, source = volume_slices(tmp_path / "series", size=16)
    assert images.shape[1:] == (16, 16) and (source[:, 0] == 0).all()


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="paths_or_folder"):
        volume_slices(tmp_path / "missing", size=16)
    with pytest.raises(ValueError, match="paths_or_folder"):
        volume_slices(tmp_path, size=16)  # empty folder
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(ValueError, match="broken.nii.gz"):
        volume_slices(tmp_path, size=16)
    (tmp_path / "broken.nii.gz").unlink()
    nan = _phantom_volume()
    nan[0, 0, 0] = np.nan
    _write_nifti(tmp_path / "nan.nii", nan)
    with pytest.raises(ValueError, match="NaN"):
        volume_slices(tmp_path, size=16)
    with pytest.raises(ValueError, match="axis"):
        volume_slices(tmp_path, size=16, axis="oblique")
    with pytest.raises(ValueError, match="split"):
        volume_slices(tmp_path, size=16, split="validation")
    with pytest.raises(TypeError, match="paths_or_folder"):
        volume_slices(3, size=16)


def test_crop_to_anatomy():
    img = np.zeros((100, 60), np.float32)
    img[30:50, 20:30] = 1.0
    crop = crop_to_anatomy(img)
    assert crop.shape[0] == crop.shape[1] == 22  # 20 grown by 5 % on each side
    assert crop.sum() == img.sum()  # all anatomy kept
    wide = np.random.default_rng(0).uniform(0.5, 1.0, (40, 80)).astype(np.float32)  # anatomy fills the frame
    assert crop_to_anatomy(wide).shape == (40, 40)  # square of the short side
    assert crop_to_anatomy(np.ones((30, 50), np.float32)).shape == (30, 30)  # constant: all of it
    with pytest.raises(ValueError, match="image"):
        crop_to_anatomy(np.zeros((3, 3, 3)))


def test_mri_validation():
    pytest.importorskip("dipy")
    images, names = mri_validation(64)
    assert images.shape == (2, 64, 64) and names == ("dipy_t1_coronal", "nibabel_anatomical")
    x = np.asarray(images)
    np.testing.assert_allclose(x.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(x.max(axis=(1, 2)), 1.0, atol=1e-5)
    assert x.std(axis=(1, 2)).min() > 0.1  # real anatomy, not a blank
