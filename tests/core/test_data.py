"""Data sets: the fixed digits split, seeded synthetic data, clear errors for missing files."""

import pytest
import torch

from proxns_core.data import DatasetNotFoundError, augment_batch, dataset_status, load_dataset


def test_digits_is_a_fixed_stratified_split_of_1437_and_360_upsampled_to_32px():
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.x_train.shape == (1437, 3, 32, 32) and a.x_test.shape == (360, 3, 32, 32)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert 0 <= a.x_train.min() and a.x_train.max() <= 1


def test_synthetic_is_seeded_and_sized():
    a, b = (
        load_dataset("synthetic", train_subset=100, test_subset=40),
        load_dataset("synthetic", train_subset=100, test_subset=40),
    )
    assert a.x_train.shape == (100, 3, 32, 32) and a.x_test.shape == (40, 3, 32, 32)
    assert torch.equal(a.x_train, b.x_train)


@pytest.mark.parametrize(
    "name,expected",
    [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"), ("svhn", "train_32x32.mat")],
)
def test_missing_dataset_says_where_it_looked_and_how_to_fix_it(tmp_path, name, expected):
    assert dataset_status(name, str(tmp_path))[0] is False
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, str(tmp_path))
    message = str(err.value)
    assert str(tmp_path) in message and expected in message and "download" in message


def test_augmentation_crops_within_the_zero_padding_and_flips():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    out = augment_batch(x, torch.Generator().manual_seed(0), flip=True, pad=4)
    assert out.shape == x.shape
    # every output pixel is either padding (0) or one of the image's own values
    for i in range(2):
        values = set(x[i].flatten().tolist()) | {0.0}
        assert set(out[i].flatten().tolist()) <= values
