"""The .npz cache: round trip, keying, atomic writes, corrupt files."""

import jax
import numpy as np
import pytest

from manifold.data import cache_path, cached, default_cache_dir, lung_phantoms

CALLS = []


def counting_generator(*, n, scale=1.0, key):
    """A cheap generator that records its calls."""
    CALLS.append(n)
    return jax.random.normal(key, (n, 3)) * scale, np.arange(n)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_round_trip_generates_once(tmp_path):
    key = jax.random.key(0)
    a = cached(counting_generator, cache_dir=tmp_path, n=5, key=key)
    b = cached(counting_generator, cache_dir=tmp_path, n=5, key=key)
    assert CALLS == [5]
    assert len(a) == len(b) == 2 and all(isinstance(x, np.ndarray) for x in b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    expected = counting_generator(n=5, key=key)
    np.testing.assert_array_equal(b[0], expected[0])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [cache_path(counting_generator, cache_dir=tmp_path, n=5, key=key).name]  # no temp files left
    with np.load(tmp_path / files[0], allow_pickle=False) as f:  # a plain, pickle-free npz
        assert len(f.files) == 3


def test_every_argument_keys_the_cache(tmp_path):
    base = dict(cache_dir=tmp_path, n=4, key=jax.random.key(0))
    paths = {
        cache_path(counting_generator, **base),
        cache_path(counting_generator, **{**base, "n": 5}),
        cache_path(counting_generator, **{**base, "key": jax.random.key(1)}),
        cache_path(counting_generator, **base, scale=2.0),
        cache_path(lung_phantoms, **base),
    }
    assert len(paths) == 5
    cached(counting_generator, **base)
    cached(counting_generator, **base, scale=2.0)
    assert CALLS == [4, 4]


def test_real_generator_round_trip(tmp_path):
    kw = dict(n=32, size=32, key=jax.random.key(2))  # the shapes test_lung compiles too
    images, params = cached(lung_phantoms, cache_dir=tmp_path, **kw)
    again = cached("lung_phantoms", cache_dir=tmp_path, **kw)  # by name: the same entry
    assert len(list(tmp_path.iterdir())) == 1
    direct = lung_phantoms(**kw)
    np.testing.assert_array_equal(images, direct[0])
    np.testing.assert_array_equal(params, direct[1])
    np.testing.assert_array_equal(again[0], images)


def test_corrupt_file_is_regenerated_with_a_warning(tmp_path):
    kw = dict(cache_dir=tmp_path, n=4, key=jax.random.key(3))
    first = cached(counting_generator, **kw)
    path = cache_path(counting_generator, **kw)
    path.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        second = cached(counting_generator, **kw)
    assert CALLS == [4, 4]
    np.testing.assert_array_equal(first[0], second[0])
    assert len(cached(counting_generator, **kw)) == 2 and CALLS == [4, 4]  # the rewritten file is good


def test_environment_variable_sets_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIFOLD_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    cached(counting_generator, n=2, key=jax.random.key(4))
    assert len(list((tmp_path / "env").glob("*.npz"))) == 1


def test_bad_arguments_name_them(tmp_path):
    with pytest.raises(TypeError, match="scale"):
        cached(counting_generator, cache_dir=tmp_path, n=2, key=jax.random.key(0), scale=object())
    with pytest.raises(ValueError, match="fn"):
        cached("no_such_data", cache_dir=tmp_path, n=2)
    with pytest.raises(TypeError, match="fn"):
        cached(3, cache_dir=tmp_path, n=2)
