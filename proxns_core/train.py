"""The training loop: train with a sparsity method, prune, slim, optionally fine-tune, measure."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data import TensorData, load_dataset, normalize, steps_per_epoch, test_batches, train_batches
from .inference import freeze_for_inference
from .measure import count_flops, count_params, device_name, measure_latencies
from .models import build_model
from .slim import PrunePlan, apply_mask, round_plan, slim_model
from .sparsity import SparsityMethod, make_sparsity
from .spec import (
    CHECKPOINT_FILE,
    CHECKPOINT_PARTIAL,
    DELIVERED_BN_BATCHES,
    TORCHVISION_ARCHS,
    EpochMetrics,
    LayerChannels,
    Result,
    TrainConfig,
    default_milestones,
)


class Callbacks:
    """Hooks ``fit`` calls; subclass and override what you need."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """After every epoch (training and fine-tuning) with that epoch's metrics."""

    def on_step(self, step: int, total_steps: int) -> None:
        """After every optimizer step; ``step`` counts over training and fine-tuning."""

    def on_resume(self, history: list[EpochMetrics]) -> None:
        """After a checkpoint was loaded, with its epochs (the truth: later epochs are trained again)."""

    def should_stop(self) -> bool:
        """Consulted before every step (throttle it yourself); True stops ``fit`` (:class:`TrainingStopped`)."""
        return False


class TrainingStopped(Exception):
    """``should_stop`` asked ``fit`` to stop; finished epochs were reported and checkpointed."""

    def __init__(self, epochs_done: int) -> None:
        super().__init__(f"training stopped on request after {epochs_done} finished epoch(s)")
        self.epochs_done = epochs_done


@dataclass
class FitResult:
    """What ``fit`` returns: the config, per-epoch history, result and both networks."""

    config: TrainConfig
    history: list[EpochMetrics]
    result: Result
    full_model: nn.Module
    slim_model: nn.Module
    plan: PrunePlan  # an anynet.AnyPlan (coupled channel groups) for a torchvision network
    meta: dict = field(default_factory=dict)


class DeviceUnavailableError(RuntimeError):
    """The config asks for a device this machine does not have."""


def resolve_device(spec: str) -> torch.device:
    """``auto`` → the first CUDA device when present, else the CPU; a missing GPU is a clear error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {spec!r} requested but CUDA is not available on this machine; use cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    return device


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
log = logging.getLogger(__name__)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA cards that support it, else fp32; a precision the device lacks is an error."""
    cuda = device.type == "cuda"
    if precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if precision == "fp16" and not cuda:
        raise DeviceUnavailableError(
            f"precision 'fp16' needs a CUDA device and this run resolved to {device}: fp16 autocast with a "
            "grad scaler runs on CUDA only; use precision fp32 or bf16 here"
        )
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise DeviceUnavailableError(
            f"precision 'bf16' needs a card with bf16 arithmetic; {torch.cuda.get_device_name(device)} has "
            "none: use fp16 or fp32"
        )
    return precision


@torch.no_grad()
def prefill_momentum(optimizer: torch.optim.SGD) -> None:
    """Zero momentum buffers before the first step, which then computes buf = g as SGD's first-step rule.

    The fused SGD kernel creates missing buffers with ``empty_like`` and returns at once when the fp16
    grad scaler found an overflow: a skipped first step would leave them uninitialised, and every
    later step would add 0.9 × garbage. Zeros make a skipped first step harmless.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _finite(value: float) -> float | None:
    """NaN and infinities (a diverged run) become None: JSON clients cannot read them."""
    return value if math.isfinite(value) else None


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorData) -> tuple[float, float]:
    """Mean test loss and accuracy (fraction) in eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for x, y in test_batches(data):
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
    model.train(was_training)
    n = len(data.y_test)
    return loss / n, correct / n


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: TensorData, batch_size: int, max_batches: int = 200) -> nn.Module:
    """Replace BN running averages by exact statistics of the first ``max_batches`` (unaugmented)
    training batches.

    Only the BN layers run in training mode: dropout and stochastic depth stay off, as in the network
    that is evaluated, so the statistics are the eval network's and no random number is drawn.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for bn in bns:
        bn.train()
    for i in range(min(max_batches, steps_per_epoch(data, batch_size))):
        x = data.x_train[i * batch_size : (i + 1) * batch_size]
        model(normalize(x, data.mean, data.std))
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    for m, mode in modes.items():
        m.training = mode
    return model


#: Most the per-epoch "as delivered" accuracy may add to the training time (issue 12: 10 %).
DELIVERED_SHARE = 0.10


def delivered_due(spent: float, cost: float | None, base: float, share: float = DELIVERED_SHARE) -> bool:
    """Whether this training epoch records its "as delivered" accuracy: the first time (its cost is
    not known yet), and then whenever another measurement of the last one's ``cost`` keeps all of them
    (``spent``) within ``share`` of the training and evaluation time so far (``base``). Where one
    measurement costs less than ``share`` of an epoch (CIFAR-size sets on the CPU) that is every
    epoch; on a tiny set trained in milliseconds per epoch (digits on a GPU: 19 ms an epoch, 25 ms a
    measurement) it is a spaced subset. The last training epoch always records it (``fit`` reuses it)."""
    return cost is None or spent + cost <= share * base


def delivered_bn_batches(steps: int) -> int:
    """Training batches the per-epoch "as delivered" accuracy re-estimates BN statistics on:
    min(DELIVERED_BN_BATCHES, max(2, steps // 50), steps) — a fiftieth of the epoch's batches, never
    fewer than two (CIFAR at batch 64: 15 batches; digits: 2). benchmarks/bench_delivered_acc.py
    measured steps // 10 at +22-32 % epoch time on a 10k-image set on the CPU, 2 batches at +8 %."""
    return min(DELIVERED_BN_BATCHES, max(2, steps // 50), steps)


class _GraphedStep:
    """One training step — forward, backward, fused SGD, the sparsity update and the loss sum — captured
    as a CUDA graph and replayed for every full batch.

    A step of VGG-19 at batch 64 launches hundreds of small kernels; launched one by one from Python
    the card waits for the host (the loop is launch-bound on an H100). A replay launches them all at
    once and computes the same thing: the captured kernels are the eager ones, every state (weights,
    momenta, BN statistics, ξ) is updated in place, and autocast's weight cache is off while
    capturing. The first ``WARMUP`` steps run eagerly on a side stream (lazy cuDNN/cuBLAS state,
    momentum buffers); a learning-rate change captures anew (SGD and PALM read lr when captured);
    a batch of another size (the epoch's last) runs eagerly. If capturing fails, the step says so
    in the log and the run goes on without graphs.
    """

    WARMUP = 3

    def __init__(self, trainer: _Trainer, model: nn.Module, optimizer, sparsity: SparsityMethod) -> None:
        self.trainer, self.model, self.optimizer, self.sparsity = trainer, model, optimizer, sparsity
        self.warm = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.lr: float | None = None
        self.failed = False
        self.static_x = self.static_y = None
        self.static_total: torch.Tensor | None = None

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, total: torch.Tensor) -> bool:
        """Run this step through the graph (capturing it first if needed); False: run it eagerly."""
        t = self.trainer
        if self.failed or len(y) != t.config.batch_size:
            return False
        if self.warm < self.WARMUP:
            side = torch.cuda.Stream(t.device)
            side.wait_stream(torch.cuda.current_stream(t.device))
            with torch.cuda.stream(side):
                t.step_once(self.model, self.optimizer, self.sparsity, x, y, lr, total)
            torch.cuda.current_stream(t.device).wait_stream(side)
            self.warm += 1
            return True
        if self.graph is None or lr != self.lr:
            try:
                self._capture(x, y, lr)
            except Exception as exc:  # noqa: BLE001 - a capture problem must not lose the run
                log.warning(
                    "CUDA graph capture failed (%s: %s); training goes on without graphs",
                    type(exc).__name__,
                    exc,
                )
                self.failed, self.graph = True, None
                return False
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.static_total.zero_()
        self.graph.replay()
        total.add_(self.static_total)
        return True

    def _capture(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        t = self.trainer
        self.graph = None
        self.static_x, self.static_y = x.clone(), y.clone()
        self.static_total = torch.zeros((), device=t.device)
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(t.device)
        stream = torch.cuda.Stream(t.device)  # on the run's card, whatever the class-level default is
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            t.step_once(
                self.model,
                self.optimizer,
                self.sparsity,
                self.static_x,
                self.static_y,
                lr,
                self.static_total,
                cache=False,
            )
        self.graph, self.lr = graph, lr


class _Trainer:
    """State of one run: model, optimizer, schedule, sparsity, RNG; runs epochs and checkpoints."""

    def __init__(self, config: TrainConfig, callbacks: Callbacks, checkpoint_dir: str | None) -> None:
        self.config = config
        self.cb = callbacks
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        if cuda:
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
            # cuda:N is this thread's current device from here on: streams, events, graphs and the
            # bf16 check all follow the current device.
            torch.cuda.set_device(self.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.channels_last = cuda if config.channels_last is None else config.channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)  # ξ init; on the CPU, data too
        # Data order and augmentation are drawn on the training device, so that no step waits for a
        # host-drawn tensor (on the CPU this is the same generator, as before).
        self.data_generator = (
            torch.Generator(self.device).manual_seed(config.seed) if cuda else self.generator
        )
        self.data = load_dataset(
            config.dataset,
            config.data_root,
            config.download,
            config.train_subset,
            config.test_subset,
            input_size=config.input_size,
            mean=config.mean,
            std=config.std,
        ).to(self.device)
        self.steps_per_epoch = steps_per_epoch(self.data, config.batch_size)
        self.total_steps = self.steps_per_epoch * (config.epochs + config.finetune_epochs)
        self.model = build_model(config.arch, config.depth, self.data.num_classes, width=config.width).to(
            self.device, memory_format=self.memory_format
        )
        self.sparsity = make_sparsity(config)
        self.sparsity.attach(self.model, self.generator)
        self.init_note: str | None = None  # what loading init_weights left out (a new classifier)
        if config.init_weights:  # a pretrained start (a resumed run's checkpoint then loads over it)
            from .weights import describe, load_init_weights

            what = describe(config.arch, config.depth, config.width, self.data.num_classes)
            self.init_note = load_init_weights(self.model, self.sparsity, config.init_weights, what)
        self.optimizer, self.scheduler = self._optimizer(self.model)
        # fp16 needs loss scaling; the fused SGD step reads the scaler's overflow flag on the device.
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.history: list[EpochMetrics] = []
        self.checkpoint = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
        self.step = 0
        self._compiled: dict[int, nn.Module] = {}
        graphs = config.cuda_graphs
        if graphs is None:
            graphs = cuda and self.precision != "fp16" and not config.compile
        elif graphs and not cuda:
            graphs = False  # nothing to capture on the CPU: the plain loop
        self.cuda_graphs = graphs
        self._graphs: dict[int, _GraphedStep] = {}
        self._groups: list | None = None
        # Per training epoch the "as delivered" accuracy (pruned now, BN re-estimated); a private switch
        # (tests and the overhead benchmark turn it off: training must not change either way).
        self.record_delivered = _RECORD_DELIVERED
        #: (plan, masked network, accuracy) delivered after the last training epoch: what ``fit`` delivers.
        self.delivered: tuple | None = None
        # Seconds of training + evaluation so far, of the delivered measurements so far, and what the
        # last delivered measurement cost (its budget: DELIVERED_SHARE of the training time).
        self._base_seconds, self._delivered_seconds = 0.0, 0.0
        self._delivered_cost: float | None = None

    def coupled_groups(self) -> list:
        """The coupled BN channel groups of a torchvision network (:func:`proxns_core.anynet.coupled_groups`),
        traced once per run on a CPU copy at the config's input size (tracing is slow)."""
        if self._groups is None:
            from .anynet import coupled_groups

            probe = copy.deepcopy(self.model).cpu().float().to(memory_format=torch.contiguous_format)
            self._groups = coupled_groups(probe, self.config.input_size)
        return self._groups

    def _optimizer(self, model: nn.Module, milestones: list[int] | None = None):
        c = self.config
        # On CUDA the fused SGD kernel: one launch per step, and with a grad scaler no host sync.
        fused = {"fused": True} if self.device.type == "cuda" else {}
        opt = torch.optim.SGD(
            model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, **fused
        )
        if fused and c.momentum:
            prefill_momentum(opt)
        ms = c.lr_milestones if milestones is None else milestones
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=ms, gamma=0.1)

    def autocast(self, cache: bool = True) -> contextlib.AbstractContextManager:
        """The forward pass's precision: autocast to bf16/fp16, or nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision], cache_enabled=cache)

    def step_once(
        self, net: nn.Module, optimizer, sparsity: SparsityMethod, x, y, lr: float, total, cache: bool = True
    ) -> None:
        """One training step; the loss, times the batch size, is added to ``total`` on the device.

        Also what a CUDA graph captures (``cache=False``: autocast's weight cache is off while capturing).
        """
        optimizer.zero_grad(set_to_none=True)  # new gradients: in the graph's own memory when capturing
        with self.autocast(cache):
            loss = F.cross_entropy(net(x), y)
        scaler = self.scaler
        if scaler is None:
            loss.backward()
            sparsity.after_backward()
            optimizer.step()
            sparsity.after_step(lr)
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # true gradients for NS's λ·sign(γ)
            sparsity.after_backward()
            scaler.step(optimizer)  # fused: skips itself on overflow, no host sync
            skipped = sum(scaler._found_inf_per_device(optimizer).values()) > 0
            scaler.update()
            sparsity.after_step(lr, skipped)
        total.add_(loss.detach().float() * len(y))

    def train_module(self, model: nn.Module) -> nn.Module:
        """``model``, or its ``torch.compile`` form (made once per network) when the config asks."""
        if not self.config.compile:
            return model
        if id(model) not in self._compiled:
            self._compiled[id(model)] = torch.compile(model)
        return self._compiled[id(model)]

    def run_epoch(self, model: nn.Module, optimizer, sparsity: SparsityMethod) -> float:
        """One pass over the training data; returns the mean training loss (read once, at the end)."""
        total, count = self.run_steps(model, optimizer, sparsity)
        return float(total) / count

    def run_steps(self, model: nn.Module, optimizer, sparsity: SparsityMethod) -> tuple[torch.Tensor, int]:
        """One pass over the training data; returns the summed loss (a device tensor) and the images.

        The loop never waits for the device: the loss is summed on the device, data and augmentation
        are drawn there, the callbacks get host integers, and ``should_stop`` reads a flag another
        thread sets (tests/core/test_gpu.py runs it under ``torch.cuda.set_sync_debug_mode("error")``).
        """
        model.train()
        net = self.train_module(model)
        lr = optimizer.param_groups[0]["lr"]
        total, count = torch.zeros((), device=self.device), 0
        graphed = self._graphed(model, optimizer, sparsity) if self.cuda_graphs else None
        for x, y in train_batches(self.data, self.config.batch_size, self.data_generator):
            if self.cb.should_stop():
                raise TrainingStopped(len(self.history))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if graphed is None or not graphed.step(x, y, lr, total):
                self.step_once(net, optimizer, sparsity, x, y, lr, total)
            count += len(y)
            self.step += 1
            self.cb.on_step(self.step, self.total_steps)
        return total, count

    def _graphed(self, model: nn.Module, optimizer, sparsity: SparsityMethod) -> _GraphedStep:
        key = id(model)
        if key not in self._graphs or self._graphs[key].optimizer is not optimizer:
            # one network's graph at a time (fine-tuning drops the full network's)
            self._graphs = {key: _GraphedStep(self, model, optimizer, sparsity)}
        return self._graphs[key]

    def deliver(self, final: bool) -> tuple:
        """(plan, masked network, test accuracy) of the network as it would be delivered now: pruned by
        the method's plan (:func:`_plan_and_mask`, what ``fit`` uses), BN statistics re-estimated.

        ``final`` (after the last training epoch): exactly ``fit``'s procedure — up to 200 batches when
        ``precise_bn``, else the running averages — so its accuracy is ``fit``'s ``acc_masked`` (and
        ``acc_slim`` where slimming is exact). Otherwise :func:`delivered_bn_batches` batches. The
        masked network is a separate copy (the graphed training network is only read), and no random
        number of the run is drawn (the CPU generator is forked: tracing a torchvision network draws one).
        """
        with torch.random.fork_rng(devices=[]):
            plan, masked = _plan_and_mask(self, self.model)
            if final:
                batches = 200 if self.config.precise_bn else 0
            else:
                batches = delivered_bn_batches(self.steps_per_epoch)
            if batches:
                recalibrate_bn(masked, self.data, self.config.batch_size, max_batches=batches)
            acc = evaluate(masked, self.data)[1]
        return plan, masked, acc

    def record(
        self,
        phase: str,
        epoch: int,
        lr: float,
        train_loss: float,
        model: nn.Module,
        sparsity: SparsityMethod,
        seconds: float,
    ) -> EpochMetrics:
        t_eval = time.perf_counter()
        test_loss, test_acc = evaluate(model, self.data)
        delivered, layers = None, None
        if phase == "train":
            layers = sparsity.layer_sparsity()
            self._base_seconds += seconds + time.perf_counter() - t_eval
            final = epoch == self.config.epochs
            due = self.record_delivered == "every" or delivered_due(
                self._delivered_seconds, self._delivered_cost, self._base_seconds
            )
            if self.record_delivered and (final or due):
                t_delivered = time.perf_counter()
                out = self.deliver(final)
                self._delivered_cost = time.perf_counter() - t_delivered
                self._delivered_seconds += self._delivered_cost
                delivered = out[2]
                self.delivered = out if final else None
        metrics = EpochMetrics(
            phase=phase,
            epoch=epoch,
            epochs=self.config.epochs + self.config.finetune_epochs,
            lr=lr,
            train_loss=_finite(train_loss),
            objective=_finite(train_loss + sparsity.penalty()),
            test_loss=_finite(test_loss),
            test_acc=test_acc,
            test_acc_delivered=delivered,
            zero_fraction=sparsity.zero_fraction(),
            seconds=seconds,
            layers=layers,
        )
        self.history.append(metrics)
        return metrics

    def save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": len(self.history),
            "config": self.config.model_dump(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sparsity": self.sparsity.state_dict(),
            "generator": self.generator.get_state(),
            "data_generator": self.data_generator.get_state(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "history": [m.model_dump() for m in self.history],
        }
        tmp = self.checkpoint.with_name(CHECKPOINT_PARTIAL)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.checkpoint)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
            raise

    def load(self) -> bool:
        if self.checkpoint is None or not self.checkpoint.exists():
            return False
        # weights_only: a checkpoint holds tensors, plain dicts, lists and numbers; nothing is unpickled.
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        if state["config"] != self.config.model_dump():
            raise ValueError(
                f"checkpoint {self.checkpoint} belongs to a different config; remove it to start afresh"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sparsity.load_state_dict(state["sparsity"])
        self.generator.set_state(state["generator"].cpu())
        if state.get("data_generator") is not None:
            self.data_generator.set_state(state["data_generator"].cpu())
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = [EpochMetrics.model_validate(m) for m in state["history"]]
        self.step = state["epoch"] * self.steps_per_epoch
        return True

    def train(self) -> None:
        for epoch in range(len(self.history), self.config.epochs):
            self.train_epoch(epoch)

    def train_epoch(self, epoch: int) -> EpochMetrics:
        """Training epoch ``epoch`` (0-based): the steps, the lr schedule, the record, checkpoint, callback."""
        t0 = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train_loss = self.run_epoch(self.model, self.optimizer, self.sparsity)
        self.scheduler.step()
        metrics = self.record(
            "train", epoch + 1, lr, train_loss, self.model, self.sparsity, time.perf_counter() - t0
        )
        self.save()
        self.cb.on_epoch_end(metrics)
        return metrics

    def finetune(self, slim: nn.Module) -> float:
        """Plain SGD on the slimmed network (NS's step 3); returns its final test accuracy."""
        n = self.config.finetune_epochs
        slim.to(memory_format=self.memory_format)
        optimizer, scheduler = self._optimizer(slim, default_milestones(n))
        plain = SparsityMethod()
        plain.attach(slim)
        acc = evaluate(slim, self.data)[1]
        for e in range(n):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            train_loss = self.run_epoch(slim, optimizer, plain)
            scheduler.step()
            metrics = self.record(
                "finetune", self.config.epochs + e + 1, lr, train_loss, slim, plain, time.perf_counter() - t0
            )
            acc = metrics.test_acc
            self.cb.on_epoch_end(metrics)
        if self.config.precise_bn:
            recalibrate_bn(slim, self.data, self.config.batch_size)
            acc = evaluate(slim, self.data)[1]
        return acc


def _device_label(device: torch.device) -> str:
    """``cuda:0`` rather than ``cuda``: where the run actually ran."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


_RECORD_DELIVERED = True


def _plan_and_mask(t: _Trainer, full: nn.Module):
    """The method's plan now and the masked network (a copy): what ``fit`` delivers and what each
    training epoch's ``test_acc_delivered`` measures. A paper network: the sparsity's plan rounded to
    ``channel_multiple`` (stream channels added when ``prune_stream``); a torchvision network: the plan
    over its coupled channel groups (traced once per run), rounded alike. The slim network is made from
    it later (:func:`_slim_any` / :func:`~proxns_core.slim.slim_model`); masked equals slim where exact."""
    config = t.config
    if config.arch in TORCHVISION_ARCHS:
        from .anynet import apply_mask_any, round_any_plan

        plan = t.sparsity.group_plan(full, t.coupled_groups())
        plan = round_any_plan(full, plan, config.channel_multiple)
        return plan, apply_mask_any(full, plan)
    plan = round_plan(full, t.sparsity.prune_plan(full), config.channel_multiple)
    if config.prune_stream:
        from .stream import extend_plan  # only imported when asked for

        # after round_plan (which would drop the stream masks); stream widths rounded alike
        plan = extend_plan(full, plan, config.channel_multiple)
    return plan, apply_mask(full, plan)


def _slim_any(t: _Trainer, masked: nn.Module, plan):
    """Slim (on a CPU copy, where Torch-Pruning traces) and move back to the training device/layout."""
    from .anynet import slim_any

    cpu = copy.deepcopy(masked).cpu().float().to(memory_format=torch.contiguous_format)
    slim, report = slim_any(cpu, plan, t.config.input_size)
    return slim.to(t.device, memory_format=t.memory_format), report


def fit(
    config: TrainConfig,
    callbacks: Callbacks | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> FitResult:
    """Train ``config``, prune and slim the network, fine-tune if asked, and measure both networks.

    A torchvision network (``config.arch`` in ``TORCHVISION_ARCHS``) is pruned by coupled channel
    groups traced with Torch-Pruning (:mod:`proxns_core.anynet`, traced once per run): proxns deletes a
    coupled channel exactly when ξ is 0 in every BN of its group, NS the ``prune_ratio`` share with the
    lowest mean |γ| over their group's BNs; ``Result.channels_total``/``channels_pruned`` then count
    coupled channels (a residual-stream channel once), ``Result.layers`` every BN. The slim network
    (:func:`~proxns_core.anynet.slim_any`) folds each deleted channel's constant into its consumers;
    where a fold is not exact (``inexact_layers``, e.g. squeeze-excitation) its BN statistics are
    re-estimated on training batches before ``acc_slim`` is measured, and ``acc_masked`` − ``acc_slim`` is
    the gap left. The folds hold in training mode too (a deleted channel's BN outputs its bias whatever
    the batch), so the slim network fine-tunes as it is.
    """
    t = _Trainer(config, callbacks or Callbacks(), checkpoint_dir)
    if resume and t.load():
        t.cb.on_resume(list(t.history))
    t.train()
    full = t.model
    torchvision_net = config.arch in TORCHVISION_ARCHS
    if t.delivered is not None:
        # the last training epoch built, recalibrated and measured it (its test_acc_delivered)
        plan, masked, acc_masked = t.delivered
        t.delivered = None
    else:  # training ran elsewhere (a resumed run with every epoch done) or the per-epoch record was off
        plan, masked, acc_masked = t.deliver(final=True)
    if config.precise_bn:
        recalibrate_bn(full, t.data, config.batch_size)
    full.eval()
    acc_full = evaluate(full, t.data)[1]
    if torchvision_net:
        # folds are measured on the (recalibrated) masked network: slim it now
        slim, report = _slim_any(t, masked, plan)
        slim_exact, inexact = report.all_exact, dict(report.inexact)
        if not slim_exact:
            # an inexact fold shifts the consumer's input statistics: re-estimate the slim network's
            recalibrate_bn(slim, t.data, config.batch_size)
        layers = plan.layers()
    else:
        # The slim network in the training layout, like the full one (also for timing them alike).
        slim = slim_model(masked, plan).to(memory_format=t.memory_format)
        slim_exact, inexact = True, {}
        layers = plan.layers()
    acc_slim = evaluate(slim, t.data)[1]
    acc_finetuned = t.finetune(slim) if config.finetune_epochs else None
    slim.eval()
    # Latency of the inference forms (BN folded, frozen: what is exported as .pt2 and TorchScript),
    # timed alternately at batch 1 and 64.
    latency = measure_latencies(
        {
            "full": freeze_for_inference(full, config.input_size),
            "slim": freeze_for_inference(slim, config.input_size),
        },
        input_size=config.input_size,
        device=t.device,
    )
    batch1 = {m.network: m for m in latency if m.batch_size == 1}
    result = Result(
        acc_full=acc_full,
        acc_slim=acc_slim,
        acc_finetuned=acc_finetuned,
        channels_total=plan.channels_total,
        channels_pruned=plan.channels_pruned,
        pruned_fraction=plan.channels_pruned / plan.channels_total,
        params_full=count_params(full),
        params_slim=count_params(slim),
        flops_full=count_flops(full, config.input_size),
        flops_slim=count_flops(slim, config.input_size),
        latency_full_ms=batch1["full"].median_ms,
        latency_slim_ms=batch1["slim"].median_ms,
        latency=latency,
        layers=[LayerChannels(**layer) for layer in layers],
        kept_forced=plan.kept_forced,
        num_classes=t.data.num_classes,
        acc_masked=acc_masked,
        slim_exact=slim_exact,
        inexact_layers=inexact,
        device=_device_label(t.device),
        device_name=device_name(t.device),
        precision=t.precision,
        channels_last=t.channels_last,
    )
    meta = {
        "arch": config.arch,
        "depth": config.depth,
        "width": config.width,
        "num_classes": t.data.num_classes,
        "cfg": getattr(slim, "cfg", None),
        "input_size": config.input_size,
        "mean": list(t.data.mean),
        "std": list(t.data.std),
        "dataset": config.dataset,
    }
    if torchvision_net:
        # what load_slim needs to rebuild the slim shapes: the full network re-traced at input_size and
        # pruned at these root indices with Torch-Pruning (the folds are named in the weights file)
        import torch_pruning

        meta["pruned_roots"] = plan.pruned_roots()
        meta["torch_pruning"] = torch_pruning.__version__
    if getattr(t.data, "classes", None):
        meta["classes"] = list(t.data.classes)
    return FitResult(config, t.history, result, full, slim, plan, meta)
