"""ModelConfig construction errors name the field and the value (the loader adds the file name)."""

import numpy as np
import pytest

from manifold.models import ModelConfig

GOOD = {"architecture": "vae", "latent_dim": 3, "image_size": 8, "channels": [8, 4]}


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("image_size", "8", TypeError, r"image_size: expected a positive int, got '8' of type str"),
        ("latent_dim", 3.0, TypeError, r"latent_dim: expected a positive int, got 3.0 of type float"),
        ("latent_dim", True, TypeError, r"latent_dim: expected a positive int, got True"),
        ("latent_dim", -1, ValueError, r"latent_dim: expected a positive int, got -1"),
        ("channels", None, TypeError, r"channels: expected a sequence of positive ints, got None"),
        ("channels", "84", TypeError, r"channels: expected a sequence of positive ints, got '84'"),
        ("channels", [8, "4"], TypeError, r"channels: expected a sequence of positive ints, got \[8, '4'\]"),
        ("channels", [8, 0], ValueError, r"channels: expected a non-empty sequence of positive ints"),
        ("architecture", ["vae"], ValueError, r"architecture: expected one of .* got \['vae'\]"),
        ("output", None, ValueError, r"output: expected 'sigmoid' or 'linear', got None"),
    ],
)
def test_bad_field_is_named(field, value, error, message):
    with pytest.raises(error, match=message):
        ModelConfig.from_dict({**GOOD, field: value})


def test_missing_and_unknown_fields_are_named():
    with pytest.raises(ValueError, match=r"model config: missing fields \['latent_dim'\]"):
        ModelConfig.from_dict({k: v for k, v in GOOD.items() if k != "latent_dim"})
    with pytest.raises(ValueError, match=r"model config: unknown fields \['depth'\]"):
        ModelConfig.from_dict({**GOOD, "depth": 3})
    with pytest.raises(TypeError, match="model config: expected a mapping of fields, got list"):
        ModelConfig.from_dict([("architecture", "vae")])


def test_round_trip_and_numpy_ints():
    config = ModelConfig.from_dict(GOOD)
    assert config.channels == (8, 4) and ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig("vae", np.int64(3), np.int32(8), (8, 4)) == config  # numpy ints are ints
    assert type(ModelConfig("vae", np.int64(3), 8, (8, 4)).latent_dim) is int
