"""TrainConfig: defaults from docs/method.md, and clear field-named errors for invalid input."""

import pytest
from pydantic import ValidationError

from proxns_core import TrainConfig
from proxns_core.spec import valid_depths


def _errors(**kw):
    with pytest.raises(ValidationError) as err:
        TrainConfig(**kw)
    return {e["loc"][0]: e["msg"] for e in err.value.errors()}


def test_defaults_follow_the_published_settings():
    c = TrainConfig()
    assert (c.arch, c.depth, c.method, c.lam, c.beta, c.epochs, c.batch_size, c.lr) == (
        "vgg",
        19,
        "proxns",
        0.0045,
        100.0,
        160,
        64,
        0.1,
    )
    assert c.lr_milestones == [80, 120] and c.momentum == 0.9 and c.weight_decay == 1e-4
    r = TrainConfig(arch="resnet")
    assert (r.depth, r.lam, r.beta) == (164, 0.002, 0.25)
    assert TrainConfig(arch="densenet").depth == 40
    ns = TrainConfig(method="ns", arch="densenet")
    assert (ns.lam, ns.prune_ratio, ns.beta) == (1e-5, 0.4, None)


@pytest.mark.parametrize(
    "kw,field,fragment",
    [
        ({"arch": "alexnet"}, "arch", "'vgg', 'resnet', 'densenet', 'resnet18'"),
        ({"arch": "resnet18", "depth": 18}, "depth", "applies only to arch vgg, resnet, densenet"),
        ({"arch": "mobilenet_v2", "width": 0.5}, "width", "mobilenet_v2 is a torchvision network"),
        ({"arch": "vgg", "prune_stream": True}, "prune_stream", "only to arch resnet or densenet"),
        ({"arch": "resnet50", "prune_stream": True}, "prune_stream", "not 'resnet50'"),
        ({"arch": "resnet", "depth": 100}, "depth", "9n+2"),
        ({"arch": "vgg", "depth": 12}, "depth", "11, 13, 16, 19"),
        ({"arch": "densenet", "depth": 41}, "depth", "3n+4"),
        ({"lam": -0.1}, "lam", "greater than or equal to 0"),
        ({"epochs": 10000}, "epochs", "less than or equal to 1000"),
        ({"method": "proxns", "prune_ratio": 0.5}, "prune_ratio", "only to method 'ns'"),
        ({"method": "ns", "beta": 10}, "beta", "only to method 'proxns'"),
        ({"method": "baseline", "lam": 0.1}, "lam", "baseline"),
        ({"device": "gpu"}, "device", "auto, cpu, cuda, cuda:N"),
        ({"dataset": "imagenet"}, "dataset", "'cifar10'"),
        ({"epochs": 10, "lr_milestones": [5, 12]}, "lr_milestones", "1..9"),
        ({"width": 0}, "width", "greater than 0"),
        ({"batch_sise": 64}, "batch_sise", "Extra inputs are not permitted"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field_and_what_is_allowed(kw, field, fragment):
    errors = _errors(**kw)
    assert field in errors and fragment in errors[field]


def test_valid_depths():
    assert valid_depths("vgg") == [11, 13, 16, 19]
    assert 164 in valid_depths("resnet") and 100 not in valid_depths("resnet")
    assert 40 in valid_depths("densenet") and 41 not in valid_depths("densenet")


@pytest.mark.parametrize(
    "kw,field,fragment",
    [
        ({"epochs": True}, "epochs", "not a boolean"),
        ({"width": False}, "width", "not a boolean"),
        ({"seed": True}, "seed", "not a boolean"),
        ({"lr_milestones": [True]}, "lr_milestones", "not a boolean"),
        ({"lr": float("nan")}, "lr", "finite number"),
        ({"width": float("inf")}, "width", "finite number"),
        ({"device": "cpu\n"}, "device", "control characters"),
        ({"device": "cuda:\u0663"}, "device", "cuda:N"),
        ({"data_root": "data\x00"}, "data_root", "NUL"),
        ({"data_root": "\ud800"}, "data_root", "surrogate"),
        ({"data_root": "d" * 4097}, "data_root", "4096"),
    ],
)
def test_booleans_non_finite_numbers_and_control_characters_are_refused(kw, field, fragment):
    errors = _errors(**kw)
    assert field in errors and fragment in errors[field]


def test_text_values_still_parse_as_numbers():
    # `proxns train --epochs 20 --lr-milestones 5,10` hands pydantic strings
    c = TrainConfig(epochs="20", width="0.25", lr_milestones=["5", "10"], device="cuda:1")
    assert (c.epochs, c.width, c.lr_milestones, c.device) == (20, 0.25, [5, 10], "cuda:1")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "vgg16_bn", "densenet121"])
def test_torchvision_arch_takes_no_depth_or_width_and_its_family_defaults(arch):
    from proxns_core.spec import ARCH_FAMILY, DEFAULT_BETA, DEFAULT_LAM, contract

    config = TrainConfig(arch=arch, method="proxns")
    family = ARCH_FAMILY[arch]
    assert config.depth is None and config.width == 1.0 and not config.prune_stream
    assert (config.lam, config.beta) == (DEFAULT_LAM["proxns"][family], DEFAULT_BETA[family])
    # a stored config re-validates as it was
    assert TrainConfig.model_validate(config.model_dump()) == config
    info = next(a for a in contract()["archs"] if a["name"] == arch)
    assert info["family"] == "torchvision" and not info["takes_depth"] and info["depths"] == []
