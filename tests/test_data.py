import numpy as np
import pytest

from ssdgm.data import mnist


@pytest.fixture(scope="module")
def splits():
    return mnist.load_splits()


def test_shipped_file_passes_checksums_and_splits_as_the_paper(splits):
    assert {k: len(v[0]) for k, v in splits.items()} == {"train": 50_000, "valid": 10_000, "test": 10_000}
    x, y = splits["train"]
    assert x.shape == (50_000, 784) and x.dtype == np.float32
    assert 0.0 == x.min() and x.max() == 1.0
    assert np.bincount(splits["test"][1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = mnist.load_raw()
    np.testing.assert_array_equal(splits["valid"][1], raw["y_train"][50_000:])


def _copy_with(tmp_path, **changes):
    with np.load(mnist.DEFAULT_PATH) as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays.update(changes)
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    return str(path), arrays


def test_altered_array_is_an_error_naming_the_file(tmp_path):
    with np.load(mnist.DEFAULT_PATH) as f:
        x = f["x_test"].copy()
    x[0, 0, 0] ^= 1
    path, _ = _copy_with(tmp_path, x_test=x)
    with pytest.raises(mnist.DataError, match=r"mnist\.npz.*x_test.*SHA-256"):
        mnist.load_splits(path)


def test_truncated_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "mnist.npz"
    with open(mnist.DEFAULT_PATH, "rb") as f:
        path.write_bytes(f.read()[:100_000])
    with pytest.raises(mnist.DataError, match=str(path)):
        mnist.load_raw(str(path))


def test_missing_file_falls_back_to_keras_and_reports_its_failure(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("no network")
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    missing = str(tmp_path / "absent.npz")
    with pytest.raises(mnist.DataError, match="absent.npz: file missing and the Keras download failed"):
        mnist.load_raw(missing)

    def wrong():  # a download that does not match the published checksums is refused too
        z = np.zeros((1, 28, 28), np.uint8)
        return (z, z[:, 0, 0]), (z, z[:, 0, 0])
    monkeypatch.setattr(keras.datasets.mnist, "load_data", wrong)
    with pytest.raises(mnist.DataError, match="SHA-256"):
        mnist.load_raw(missing)


def test_labelled_subset_is_balanced_disjoint_and_complete(splits):
    y = splits["train"][1]
    lab, unl = mnist.labelled_split(y, 100, seed=3)
    assert np.bincount(y[lab], minlength=10).tolist() == [10] * 10
    assert len(np.intersect1d(lab, unl)) == 0
    assert len(lab) + len(unl) == 50_000
    lab_all, unl_all = mnist.labelled_split(y, 50_000, seed=0)
    np.testing.assert_array_equal(lab_all, np.arange(50_000))
    assert len(unl_all) == 0
    with pytest.raises(mnist.DataError, match="needs 4990 images of class 0, only 4932 exist"):
        mnist.labelled_split(y, 49_900, seed=0)


def test_labelled_subset_depends_on_the_seed_alone(splits):
    y = splits["train"][1]
    a, _ = mnist.labelled_split(y, 600, seed=7)
    b, _ = mnist.labelled_split(y, 600, seed=7)
    c, _ = mnist.labelled_split(y, 600, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("n", [0, -10, 15, 50_010, 99.0])
def test_impossible_label_counts_are_errors(n):
    y = np.repeat(np.arange(10), 5000).astype(np.int32)
    with pytest.raises(mnist.DataError, match="labels must be a positive multiple of 10"):
        mnist.labelled_split(y, n, seed=0)


def test_binarize_draws_bernoulli_pixels():
    x = np.full((200, 784), 0.3, np.float32)
    b = mnist.binarize(x, np.random.default_rng(0))
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 0.01
