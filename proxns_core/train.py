"""The training loop: train with a sparsity method, prune, slim, optionally fine-tune, measure."""

from __future__ import annotations

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
from .measure import count_flops, count_params, measure_latency_ms
from .models import build_model
from .slim import PrunePlan, apply_mask, round_plan, slim_model
from .sparsity import SparsityMethod, make_sparsity
from .spec import (
    CHECKPOINT_FILE,
    CHECKPOINT_PARTIAL,
    INPUT_SIZE,
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
    plan: PrunePlan
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
    """Replace BN running averages by exact statistics of (unaugmented) training batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for i in range(min(max_batches, steps_per_epoch(data, batch_size))):
        x = data.x_train[i * batch_size : (i + 1) * batch_size]
        model(normalize(x, data.mean, data.std))
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.train(was_training)
    return model


class _Trainer:
    """State of one run: model, optimizer, schedule, sparsity, RNG; runs epochs and checkpoints."""

    def __init__(self, config: TrainConfig, callbacks: Callbacks, checkpoint_dir: str | None) -> None:
        self.config = config
        self.cb = callbacks
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)  # data order, augmentation, ξ init
        self.data = load_dataset(
            config.dataset, config.data_root, config.download, config.train_subset, config.test_subset
        ).to(self.device)
        self.steps_per_epoch = steps_per_epoch(self.data, config.batch_size)
        self.total_steps = self.steps_per_epoch * (config.epochs + config.finetune_epochs)
        self.model = build_model(config.arch, config.depth, self.data.num_classes, width=config.width).to(
            self.device
        )
        self.sparsity = make_sparsity(config)
        self.sparsity.attach(self.model, self.generator)
        self.optimizer, self.scheduler = self._optimizer(self.model)
        self.history: list[EpochMetrics] = []
        self.checkpoint = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
        self.step = 0

    def _optimizer(self, model: nn.Module, milestones: list[int] | None = None):
        c = self.config
        opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        ms = c.lr_milestones if milestones is None else milestones
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=ms, gamma=0.1)

    def run_epoch(self, model: nn.Module, optimizer, sparsity: SparsityMethod) -> float:
        """One pass over the training data; returns the mean training loss."""
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        total, count = torch.zeros((), device=self.device), 0
        for x, y in train_batches(self.data, self.config.batch_size, self.generator):
            if self.cb.should_stop():
                raise TrainingStopped(len(self.history))
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            sparsity.after_backward()
            optimizer.step()
            sparsity.after_step(lr)
            total += loss.detach() * len(y)
            count += len(y)
            self.step += 1
            self.cb.on_step(self.step, self.total_steps)
        return float(total) / count

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
        test_loss, test_acc = evaluate(model, self.data)
        metrics = EpochMetrics(
            phase=phase,
            epoch=epoch,
            epochs=self.config.epochs + self.config.finetune_epochs,
            lr=lr,
            train_loss=_finite(train_loss),
            objective=_finite(train_loss + sparsity.penalty()),
            test_loss=_finite(test_loss),
            test_acc=test_acc,
            zero_fraction=sparsity.zero_fraction(),
            seconds=seconds,
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
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = [EpochMetrics.model_validate(m) for m in state["history"]]
        self.step = state["epoch"] * self.steps_per_epoch
        return True

    def train(self) -> None:
        for epoch in range(len(self.history), self.config.epochs):
            t0 = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss = self.run_epoch(self.model, self.optimizer, self.sparsity)
            self.scheduler.step()
            metrics = self.record(
                "train", epoch + 1, lr, train_loss, self.model, self.sparsity, time.perf_counter() - t0
            )
            self.save()
            self.cb.on_epoch_end(metrics)

    def finetune(self, slim: nn.Module) -> float:
        """Plain SGD on the slimmed network (NS's step 3); returns its final test accuracy."""
        n = self.config.finetune_epochs
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


def fit(
    config: TrainConfig,
    callbacks: Callbacks | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> FitResult:
    """Train ``config``, prune and slim the network, fine-tune if asked, and measure both networks."""
    t = _Trainer(config, callbacks or Callbacks(), checkpoint_dir)
    if resume and t.load():
        t.cb.on_resume(list(t.history))
    t.train()
    full = t.model
    plan = round_plan(full, t.sparsity.prune_plan(full), config.channel_multiple)
    masked = apply_mask(full, plan)
    if config.precise_bn:
        recalibrate_bn(full, t.data, config.batch_size)
        recalibrate_bn(masked, t.data, config.batch_size)
    full.eval()
    acc_full = evaluate(full, t.data)[1]
    slim = slim_model(masked, plan)
    acc_slim = evaluate(slim, t.data)[1]
    acc_finetuned = t.finetune(slim) if config.finetune_epochs else None
    slim.eval()
    result = Result(
        acc_full=acc_full,
        acc_slim=acc_slim,
        acc_finetuned=acc_finetuned,
        channels_total=plan.channels_total,
        channels_pruned=plan.channels_pruned,
        pruned_fraction=plan.channels_pruned / plan.channels_total,
        params_full=count_params(full),
        params_slim=count_params(slim),
        flops_full=count_flops(full, INPUT_SIZE),
        flops_slim=count_flops(slim, INPUT_SIZE),
        # latency of the inference form (BN folded, frozen), the one exported as .pt2 and TorchScript
        latency_full_ms=measure_latency_ms(
            freeze_for_inference(full, INPUT_SIZE), 1, INPUT_SIZE, device=t.device
        ),
        latency_slim_ms=measure_latency_ms(
            freeze_for_inference(slim, INPUT_SIZE), 1, INPUT_SIZE, device=t.device
        ),
        layers=[LayerChannels(**layer) for layer in plan.layers()],
        kept_forced=plan.kept_forced,
        device=str(t.device),
    )
    meta = {
        "arch": config.arch,
        "depth": config.depth,
        "width": config.width,
        "num_classes": t.data.num_classes,
        "cfg": slim.cfg,
        "input_size": INPUT_SIZE,
        "mean": list(t.data.mean),
        "std": list(t.data.std),
        "dataset": config.dataset,
    }
    return FitResult(config, t.history, result, full, slim, plan, meta)
