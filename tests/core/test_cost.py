"""The torch-free cost estimate agrees with the networks the model classes build."""

import subprocess
import sys

import pytest

from proxns_core.cost import (
    NUM_CLASSES,
    TORCHVISION_PARAMS,
    TRAIN_IMAGES,
    param_count,
    train_images,
    training_cost,
)
from proxns_core.spec import TORCHVISION_ARCHS, TrainConfig


@pytest.mark.parametrize(
    ("arch", "depth", "width", "classes"),
    [
        ("vgg", 11, 0.25, 10),
        ("vgg", 19, 1.0, 100),
        ("vgg", 16, 0.3, 10),
        ("resnet", 20, 1.0, 10),
        ("resnet", 164, 0.5, 10),
        ("resnet", 29, 0.33, 100),
        ("densenet", 40, 1.0, 10),
        ("densenet", 13, 0.7, 100),
    ],
)
def test_parameter_estimate_matches_the_built_network(arch, depth, width, classes):
    from proxns_core.measure import count_params
    from proxns_core.models import build_model

    built = count_params(build_model(arch, depth, classes, width=width))
    assert param_count(arch, depth, width, classes) == pytest.approx(built, rel=0.01)


def test_tables_agree_with_the_data_module():
    from proxns_core.data import NUM_CLASSES as DATA_CLASSES
    from proxns_core.data import SYNTHETIC_DEFAULT

    assert NUM_CLASSES == DATA_CLASSES and TRAIN_IMAGES["synthetic"] == SYNTHETIC_DEFAULT[0]


def test_cost_counts_epochs_and_images():
    cfg = TrainConfig(dataset="cifar10", arch="vgg", depth=19, epochs=160)
    assert training_cost(cfg) == param_count("vgg", 19) * 160 * 50_000  # about 1.6e14
    sub = TrainConfig(
        dataset="digits", arch="vgg", depth=11, epochs=10, finetune_epochs=5, train_subset=10**6
    )
    assert train_images(sub) == 1437 and training_cost(sub) == param_count("vgg", 11) * 15 * 1437
    assert train_images(TrainConfig(dataset="synthetic", train_subset=5000)) == 5000


def test_cost_module_does_not_import_torch():
    code = "import sys, proxns_core.cost; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("arch", TORCHVISION_ARCHS)
def test_torchvision_parameter_table_is_exact(arch):
    from proxns_core.measure import count_params
    from proxns_core.models import build_model

    assert set(TORCHVISION_PARAMS) == set(TORCHVISION_ARCHS)
    for classes in (10, 100, 1000) if arch in ("resnet18", "mobilenet_v2") else (7,):
        assert param_count(arch, None, 1.0, classes) == count_params(build_model(arch, None, classes))


def test_torchvision_cost_takes_no_depth():
    cfg = TrainConfig(dataset="digits", arch="resnet18", epochs=2)
    assert cfg.depth is None
    assert training_cost(cfg) == param_count("resnet18", None, 1.0, 10) * 2 * 1437
    with pytest.raises(ValueError, match="torchvision"):
        param_count("resnet18", 18)
