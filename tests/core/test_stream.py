"""prune_stream: deleting the ResNet/DenseNet stream channels no BN keeps is exact, and prunes more."""

import pytest
import torch

from proxns_core.export import export_model, load_slim
from proxns_core.inference import freeze_for_inference, fuse_for_inference
from proxns_core.measure import count_flops, count_params
from proxns_core.models import build_model
from proxns_core.slim import PrunePlan, apply_mask, plan_from_zero_mask, round_plan, slim_model
from proxns_core.stream import extend_plan, stream_pruned

from .test_slim import randomise_bn

CASES = [("resnet", 20, 0.5), ("resnet", 29, 0.25), ("densenet", 13, 0.5), ("densenet", 16, 0.5)]
IDS = [f"{a}-{d}" for a, d, _ in CASES]


def _model(arch, depth, width, seed=0):
    torch.manual_seed(seed)
    return randomise_bn(build_model(arch, depth, 10, width=width))


def _zero_masks(model, share=0.5, stream_share=0.4, seed=1, whole=()):
    """Random ξ zeros per BN, plus a random ``stream_share`` of each prunable stream's channels (and
    the stream channels listed in ``whole``: (stream name, channels)) zero in every BN reading them."""
    g = torch.Generator().manual_seed(seed)
    units = model.prune_units()
    zero = {u["name"]: torch.rand(u["bn"].num_features, generator=g) < share for u in units}
    for stream in model.stream_units():
        if stream["raw_readers"]:
            continue
        chosen = torch.rand(stream["width"], generator=g) < stream_share
        for name, channels in whole:
            if name == stream["name"]:
                chosen[channels] = True
        for reader, selection, _prefix in stream["readers"]:
            zero[reader] |= chosen[selection.indices]
    return [zero[u["name"]] for u in units]


def _plans(model, **kw):
    plan = plan_from_zero_mask(model, _zero_masks(model, **kw))
    return plan, extend_plan(model, plan)


def _max_gap(a, b, size, n=8):
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        return (a.eval()(x) - b.eval()(x)).abs().max().item()


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request):
    arch, depth, width = request.param
    model = _model(arch, depth, width)
    plan, ext = _plans(model)
    return arch, depth, width, model, plan, ext, slim_model(model, ext)


def test_stream_slim_network_equals_the_masked_network(case):
    arch, _, _, model, plan, ext, slim = case
    masked = apply_mask(model, ext)
    assert torch.equal(
        torch.cat([p.flatten() for p in masked.parameters()]),
        torch.cat([p.flatten() for p in apply_mask(model, plan).parameters()]),
    )  # the stream adds no masking: a deleted channel is already pruned in every BN reading it
    for size in (32, 48):
        assert _max_gap(masked, slim, size) < 1e-4
    widths = {s["name"]: s["width"] for s in slim.stream_units()}
    for name, keep in ext.stream.items():
        assert widths[name] == int(keep.sum())
    assert isinstance(slim.cfg[-1], dict) and slim.cfg == slim.current_cfg()


def test_stream_pruning_prunes_strictly_more_channels(case):
    arch, _, _, model, plan, ext, slim = case
    plain = slim_model(model, plan)
    assert stream_pruned(ext) > 0 and ext.channels_pruned == plan.channels_pruned + stream_pruned(ext)
    assert ext.masks.keys() == plan.masks.keys()
    assert all(torch.equal(ext.masks[n], m) for n, m in plan.masks.items())
    assert ext.channels_total == plan.channels_total + sum(s["width"] for s in model.stream_units())
    names = [layer["name"] for layer in ext.layers()]
    assert names[: len(plan.masks)] == list(plan.masks) and names[len(plan.masks) :] == list(ext.stream)
    assert count_params(slim) < count_params(plain) and count_flops(slim) < count_flops(plain)
    if arch == "resnet":  # only the last stage's stream: the others are read raw by a downsample conv
        assert [n for n, m in ext.stream.items() if not m.all()] == ["layer3.stream"]
    else:
        assert all(not m.all() for m in ext.stream.values())


def test_parameter_count_is_the_plain_slim_count_less_the_deleted_rows(case):
    _, _, _, model, plan, ext, slim = case
    plain = slim_model(model, plan)
    removed = 0
    for stream in plain.stream_units():
        keep = ext.stream[stream["name"]]
        for conv, first, stop in stream["producers"]:
            row = conv.weight[0].numel() + (1 if conv.bias is not None else 0)
            removed += int((~keep[first:stop]).sum()) * row
    assert count_params(slim) == sum(t.numel() for t in slim.parameters()) == count_params(plain) - removed


def test_stream_slim_network_is_rebuilt_from_its_cfg_and_reloads_from_every_export(case, tmp_path):
    arch, depth, width, _, _, _, slim = case
    rebuilt = build_model(arch, depth, 10, cfg=slim.cfg, width=width)
    state = slim.state_dict()
    plain_keys = set(rebuilt.state_dict())
    assert {k: v.shape for k, v in state.items() if k in plain_keys} == {
        k: v.shape for k, v in rebuilt.state_dict().items()
    }
    meta = {
        "arch": arch,
        "depth": depth,
        "width": width,
        "num_classes": 10,
        "cfg": slim.cfg,
        "input_size": 32,
    }
    export_model(slim, meta, tmp_path)  # checks safetensors, pt2, TorchScript and ONNX reloads itself
    loaded = load_slim(tmp_path)
    assert loaded.cfg == slim.cfg
    assert _max_gap(loaded, slim, 32) == 0.0 and _max_gap(loaded, slim, 48) == 0.0


def test_inference_forms_of_a_stream_slim_network_match_it(case):
    *_, slim = case
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = slim.eval()(x)
        fused, frozen = fuse_for_inference(slim)(x), freeze_for_inference(slim, 32, 8)(x)
    scale = max(1.0, expected.abs().max().item())
    assert (fused - expected).abs().max().item() < 1e-5 * scale
    assert (frozen - expected).abs().max().item() < 1e-4 * scale


@pytest.mark.parametrize("arch,depth,width", CASES, ids=IDS)
def test_a_plan_without_any_stream_channel_pruned_in_all_readers_is_unchanged(arch, depth, width):
    model = _model(arch, depth, width)
    zero = dict(zip([u["name"] for u in model.prune_units()], _zero_masks(model, stream_share=0.0)))
    for stream in model.stream_units():
        # un-prune, in its last reader (which reads them all), each channel that all its readers prune
        in_all = torch.ones(stream["width"], dtype=torch.bool)
        for name, selection, prefix in stream["readers"]:
            pruned = torch.zeros(stream["width"], dtype=torch.bool)
            pruned[prefix:] = True  # the channels it does not read
            pruned[selection.indices[zero[name]]] = True
            in_all &= pruned
        name, selection, _prefix = stream["readers"][-1]
        zero[name] &= ~in_all[selection.indices]
    plan = plan_from_zero_mask(model, list(zero.values()))
    assert plan.channels_pruned > 0.3 * plan.channels_total
    ext = extend_plan(model, plan)
    assert all(torch.equal(ext.masks[n], m) for n, m in plan.masks.items()) and len(ext.masks) == len(
        plan.masks
    )
    assert all(m.all() for m in ext.stream.values())
    assert ext.channels_pruned == plan.channels_pruned
    slim, plain = slim_model(model, ext), slim_model(model, plan)
    assert slim.cfg == plain.cfg == slim.current_cfg() and not isinstance(slim.cfg[-1], dict)
    assert {k: v.shape for k, v in slim.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    assert _max_gap(slim, plain, 32) == 0.0


def test_resnet_streams_read_raw_by_a_downsample_conv_are_never_pruned():
    model = _model("resnet", 20, 0.5)
    units = model.prune_units()
    ext = extend_plan(
        model, plan_from_zero_mask(model, [torch.ones(u["bn"].num_features, dtype=torch.bool) for u in units])
    )
    # every BN lost all channels but one (forced): layer1/2 and the stem still keep their whole streams
    assert [bool(ext.stream[f"{s}.stream"].all()) for s in ("stem", "layer1", "layer2")] == [True] * 3
    assert int(ext.stream["layer3.stream"].sum()) >= 1
    bad = PrunePlan(dict(ext.masks), [], {**ext.stream, "layer2.stream": ext.stream["layer3.stream"][:64]})
    with pytest.raises(ValueError, match="layer2.stream"):
        slim_model(model, bad)


def test_a_deleted_stream_channel_kept_by_a_reader_is_refused():
    model = _model("densenet", 13, 0.5)
    plan, ext = _plans(model)
    name = next(n for n, m in ext.stream.items() if not m.all())
    keep = ext.stream[name].clone()
    keep[:] = False
    with pytest.raises(ValueError, match="kept by"):
        slim_model(model, PrunePlan(ext.masks, [], {**ext.stream, name: keep}))


def test_a_dense_layer_whose_outputs_no_bn_keeps_still_writes_one_channel():
    model = _model("densenet", 13, 0.5)
    stream = model.stream_units()[0]
    _conv, first, stop = stream["producers"][2]  # features.1's growth channels
    plan, ext = _plans(model, whole=[(stream["name"], list(range(first, stop)))])
    assert int(ext.stream[stream["name"]][first:stop].sum()) == 1
    slim = slim_model(model, ext)
    assert slim.features[1].conv1.out_channels == 1
    assert _max_gap(apply_mask(model, ext), slim, 32) < 1e-4


def test_extend_after_rounding_rounds_stream_widths_too_and_stays_exact():
    model = _model("resnet", 29, 0.5)
    plan = round_plan(model, plan_from_zero_mask(model, _zero_masks(model, stream_share=0.5)), 4)
    ext = extend_plan(model, plan, multiple=8)
    assert stream_pruned(ext) > 0 and stream_pruned(ext) <= stream_pruned(extend_plan(model, plan))
    assert all(int(m.sum()) % 8 == 0 for m in ext.stream.values())
    slim = slim_model(model, ext)
    assert slim.layer3[0].conv3.out_channels % 8 == 0
    assert _max_gap(apply_mask(model, ext), slim, 32) < 1e-4


def test_vgg_has_no_stream_and_its_plan_comes_back():
    model = _model("vgg", 11, 0.5)
    plan = plan_from_zero_mask(
        model, [torch.zeros(u["bn"].num_features, dtype=torch.bool) for u in model.prune_units()]
    )
    assert extend_plan(model, plan) is plan
