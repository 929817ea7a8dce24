"""`proxns train`: one offline run, a flag per config field, progress bar, files in --out.

Importing this module is torch-free (``proxns --help`` and the client commands stay fast); the
training and export code load when the command runs.
"""

from __future__ import annotations

import json
import sys
import time
import types
import typing
from pathlib import Path

import click
from pydantic import ValidationError

from proxns_core.spec import ARTIFACT_FORMATS, CHECKPOINT_FILE, CHECKPOINT_PARTIAL, TrainConfig

from .common import fail, read_mapping

#: The files that make a folder hold a run.
RUN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_FILE, "result.json")
#: Everything a run writes, removed by ``--overwrite``.
OUTPUT_FILES = (*RUN_FILES, CHECKPOINT_PARTIAL, *(f.file for f in ARTIFACT_FORMATS.values()))


def _is_bool(annotation) -> bool:
    """``bool`` and ``bool | None`` (unset: the config's default, e.g. channels-last on CUDA only)."""
    if isinstance(annotation, types.UnionType):
        return set(typing.get_args(annotation)) == {bool, type(None)}
    return annotation is bool


def _is_list(annotation) -> bool:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return any(typing.get_origin(a) is list for a in args)


def _config_options(func):
    """One ``--flag`` per TrainConfig field, parsed as text so pydantic owns the validation."""
    for name, field in reversed(list(TrainConfig.model_fields.items())):
        flag = "--" + name.replace("_", "-")
        help_text = field.description or ""
        if _is_bool(field.annotation):
            func = click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)(
                func
            )
        else:
            extra = " (comma-separated)" if _is_list(field.annotation) else ""
            func = click.option(flag, name, default=None, metavar="VALUE", help=help_text + extra)(func)
    return func


def _flag(loc: tuple) -> str:
    return "--" + str(loc[0]).replace("_", "-") if loc else "config"


def validation_message(err: ValidationError) -> str:
    """One line naming each bad field as its CLI flag, with pydantic's reason and the bad value."""
    parts = []
    for e in err.errors():
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{_flag(e['loc'])}: {msg}{shown}")
    return "; ".join(parts)


def build_config(config_file: str | None, overrides: dict) -> TrainConfig:
    """Config from an optional YAML/JSON file, with command-line values taking precedence.

    A file that cannot be read or is not a mapping fails the command; bad values raise
    ``ValidationError``.
    """
    data: dict = read_mapping(config_file, label=f"--config {config_file}") if config_file else {}
    for name, value in overrides.items():
        if value is None:
            continue
        if _is_list(TrainConfig.model_fields[name].annotation) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        data[name] = value
    return TrainConfig.model_validate(data)


def _as_dict(value: typing.Any) -> dict:
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def _num(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(scale * value, spec)


class ProgressCallbacks:
    """A tqdm bar over every step of the run; a line per finished epoch; metrics.jsonl as it goes.

    Implements the hooks of ``proxns_core.train.Callbacks`` without subclassing it, so that
    importing this module does not import torch.
    """

    def __init__(self, metrics_path: Path, quiet: bool = False) -> None:
        self.metrics_path = metrics_path
        self.bar = None
        self.quiet = quiet

    def on_step(self, step: int, total_steps: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_steps,
                initial=step - 1,
                unit="step",
                dynamic_ncols=True,
                disable=self.quiet,
                file=sys.stderr,
            )
        self.bar.update(step - self.bar.n)

    def on_epoch_end(self, metrics) -> None:
        m = _as_dict(metrics)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(m) + "\n")
        if self.bar is not None:
            self.bar.set_description(f"{m['phase']} epoch {m['epoch']}/{m['epochs']}")
            self.bar.write(
                f"{m['phase']:>8} {m['epoch']:>4}/{m['epochs']}  lr {m['lr']:.4g}  "
                f"loss {_num(m['train_loss'], '.4f')}  obj {_num(m['objective'], '.4f')}  "
                f"test acc {_num(m['test_acc'], '.2f', 100)}%  zero {_num(m['zero_fraction'], '.1f', 100)}%  "
                f"{_num(m['seconds'], '.1f')}s"
            )

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_table(result: dict) -> str:
    """The full vs slim comparison as a plain-text table."""

    def pct(v):
        return "—" if v is None else f"{100 * v:.2f}%"

    rows = [
        ("accuracy", pct(result["acc_full"]), pct(result["acc_slim"])),
        ("accuracy, fine-tuned", "", pct(result["acc_finetuned"])),
        (
            "channels",
            f"{result['channels_total']:,}",
            f"{result['channels_total'] - result['channels_pruned']:,}",
        ),
        ("parameters", f"{result['params_full']:,}", f"{result['params_slim']:,}"),
        ("FLOPs (MACs)", f"{result['flops_full']:,}", f"{result['flops_slim']:,}"),
        ("latency, batch 1", f"{result['latency_full_ms']:.2f} ms", f"{result['latency_slim_ms']:.2f} ms"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows + [("", "full", "")])
    w2 = max(len(r[2]) for r in rows + [("", "", "slim")])
    lines = [f"{'':<{w0}}  {'full':>{w1}}  {'slim':>{w2}}"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c:>{w2}}" for a, b, c in rows]
    lines.append(f"pruned {100 * result['pruned_fraction']:.1f}% of channels on {result['device']}")
    if result.get("kept_forced"):
        lines.append(f"kept one channel in fully pruned layers: {', '.join(result['kept_forced'])}")
    return "\n".join(lines)


def _config_differences(saved: dict, config: dict) -> list[str]:
    return [
        f"--{name.replace('_', '-')} {saved.get(name)!r} -> {config[name]!r}"
        for name in config
        if saved.get(name) != config[name]
    ]


def prepare_out(out: Path, config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Make ``out`` ready for this run, or fail leaving it untouched.

    A folder that already holds a run is refused unless ``--resume`` (same config only) or
    ``--overwrite`` (the previous run's files are removed first).
    """
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file, expected a folder")
    present = [name for name in RUN_FILES if (out / name).exists()]
    if present and resume:
        saved_path = out / "config.json"
        if not saved_path.exists():
            fail(f"--resume: {out} has no config.json to check the config against; use --overwrite")
        try:
            saved = TrainConfig.model_validate(json.loads(saved_path.read_text())).model_dump()
        except (OSError, ValueError) as err:
            fail(
                f"--resume: cannot read the config of the run in {out} ({type(err).__name__}); use --overwrite"
            )
        differences = _config_differences(saved, config.model_dump())
        if differences:
            fail(
                f"--resume: the config differs from the run in {out} ({', '.join(differences)}); "
                "give the same config or use --overwrite"
            )
    elif present and not overwrite:
        fail(
            f"--out {out} already holds a run ({', '.join(present)}); "
            "--resume continues it, --overwrite replaces it"
        )
    try:
        if present and overwrite:
            for name in OUTPUT_FILES:
                (out / name).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"--out {out}: {err.strerror or err}")


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(),
    help="YAML or JSON file of config fields; flags override it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),
    default=None,
    help="Output folder (default runs/<time>). One that holds a run needs --resume or --overwrite.",
)
@click.option(
    "--resume/--no-resume",
    default=False,
    help="Continue the run in --out from its checkpoint (same config only).",
)
@click.option("--overwrite", is_flag=True, help="Remove the files of the run already in --out first.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_config_options
def train(
    config_file: str | None, out_dir: str | None, resume: bool, overwrite: bool, quiet: bool, **fields
) -> None:
    """Train one network offline, prune and slim it, and write its files to --out."""
    if resume and overwrite:
        fail("--resume continues the run in --out, --overwrite replaces it: give one of them")
    try:
        config = build_config(config_file, fields)
    except ValidationError as err:
        fail(validation_message(err))
    out = Path(out_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    prepare_out(out, config, resume, overwrite)

    # The heavy part: torch and the training code load only now.
    from proxns_core.data import DatasetNotFoundError
    from proxns_core.export import export_slim
    from proxns_core.train import DeviceUnavailableError, TrainingStopped, fit
    from proxns_core.weights import WeightsError

    (out / "config.json").write_text(json.dumps(config.model_dump(), indent=2))
    metrics_path = out / "metrics.jsonl"
    if not resume:
        metrics_path.unlink(missing_ok=True)
    progress = ProgressCallbacks(metrics_path, quiet)
    try:
        fitted = fit(config, progress, checkpoint_dir=str(out), resume=resume)
    except (DatasetNotFoundError, DeviceUnavailableError, TrainingStopped, WeightsError) as err:
        if not resume and not metrics_path.exists():
            # Nothing ran: leave no run behind, so the corrected command is not refused.
            (out / "config.json").unlink(missing_ok=True)
        fail(f"--init-weights {config.init_weights}: {err}" if isinstance(err, WeightsError) else str(err))
    finally:
        progress.close()
    result = _as_dict(fitted.result)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    artifacts = export_slim(fitted, out)
    click.echo(summary_table(result))
    click.echo(
        f"wrote {', '.join(a['name'] for a in artifacts)}, config.json, metrics.jsonl, result.json to {out}"
    )
