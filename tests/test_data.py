"""The embedded digits split: fixed, seeded, normalised, optionally upsampled."""
import pytest
import torch

from reslab import data


@pytest.fixture(scope="module")
def digits():
    return data.digits()


def test_split_sizes_shapes_and_dtypes(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == data.DIGITS_SPLIT == (1197, 300, 300)
    assert digits.shape == (1, 8, 8)
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
    assert digits.classes == tuple("0123456789")


def test_split_is_fixed_and_disjoint(digits):
    again = data.digits()
    assert torch.equal(again.train.x, digits.train.x) and torch.equal(again.test.y, digits.test.y)
    rows = {tuple(r.tolist()) for r in digits.train.x.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in digits.test.x.flatten(1)[:50])
    # every class is represented in every split
    for split in (digits.train, digits.val, digits.test):
        assert set(split.y.tolist()) == set(range(10))


def test_training_split_is_normalised(digits):
    assert digits.train.x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert digits.train.x.std().item() == pytest.approx(1.0, abs=1e-2)


def test_upsampling_keeps_labels_and_rejects_shrinking():
    big = data.digits(size=32)
    assert big.shape == (1, 32, 32)
    assert torch.equal(big.train.y, data.digits().train.y)
    with pytest.raises(ValueError, match="upsampling only"):
        data.digits(size=4)


def test_unknown_dataset_and_missing_root_are_explained():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    with pytest.raises(ValueError, match="pass root="):
        data.load("fashion-mnist")


@pytest.fixture(scope="module")
def mnist28():
    return data.mnist28()


def test_mnist28_split_sizes_shapes_and_classes(mnist28):
    assert (len(mnist28.train), len(mnist28.val), len(mnist28.test)) == data.MNIST28_SPLIT == (4000, 500, 500)
    assert mnist28.shape == (1, 28, 28) and mnist28.classes == tuple("0123456789")
    for split in (mnist28.train, mnist28.val, mnist28.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        counts = torch.bincount(split.y, minlength=10)
        assert counts.min() > 0.07 * len(split)  # 500 per class overall: no class lost in a split
    assert mnist28.train.x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert mnist28.train.x.std().item() == pytest.approx(1.0, abs=1e-2)


def test_mnist28_split_is_fixed_and_disjoint(mnist28):
    again = data.load("mnist28")
    assert torch.equal(again.train.x, mnist28.train.x) and torch.equal(again.test.y, mnist28.test.y)
    rows = {tuple(r.tolist()) for r in mnist28.train.x.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in mnist28.test.x.flatten(1)[:50])


def test_mnist28_training_subset_keeps_the_other_splits(mnist28):
    small = data.mnist28(train_size=1000)
    assert len(small.train) == 1000 and torch.equal(small.train.x, mnist28.train.x[:1000])
    assert torch.equal(small.test.x, mnist28.test.x)
    with pytest.raises(ValueError, match="train_size must be an integer between 1 and 4000"):
        data.mnist28(train_size=0)


def test_mnist28_missing_or_damaged_file_gets_one_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="is missing: restore it"):
        data.mnist28(path=tmp_path / "nope.npz")
    damaged = tmp_path / "mnist_5k.npz"
    damaged.write_bytes(data.MNIST28_FILE.read_bytes()[:-10])
    with pytest.raises(ValueError, match="does not match its sha256"):
        data.mnist28(path=damaged)
