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
