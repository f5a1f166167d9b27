"""Small meshes and models shared by the EIT tests (kept coarse: the suite budget is 90 s)."""

import pytest

from manifold.eit import EITModel, disk_mesh, thorax_mesh

COARSE = {"h_electrode": 0.05, "h_max": 0.2}


@pytest.fixture(scope="session")
def coarse_disk():
    return disk_mesh(16, **COARSE)


@pytest.fixture(scope="session")
def tiny_disk():
    return disk_mesh(16, h_electrode=0.1, h_max=0.3)


@pytest.fixture(scope="session")
def coarse_thorax():
    return thorax_mesh(16, **COARSE)


@pytest.fixture(scope="session")
def small_model():
    return EITModel(16, image_size=16, **COARSE)
