"""`proxns train`: one offline run, a flag per config field, progress bar, files in --out."""

from __future__ import annotations

import json
import sys
import time
import types
import typing
from pathlib import Path

import click
import yaml
from pydantic import ValidationError
from tqdm import tqdm

from .config import TrainConfig
from .data import DatasetNotFoundError
from .export import export_slim
from .train import Callbacks, TrainingStopped, fit


def _is_bool(annotation) -> bool:
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
    """Config from an optional YAML/JSON file, with command-line values taking precedence."""
    data: dict = {}
    if config_file:
        text = Path(config_file).read_text()
        data = (json.loads(text) if config_file.endswith(".json") else yaml.safe_load(text)) or {}
        if not isinstance(data, dict):
            raise click.UsageError(f"{config_file}: expected a mapping of config fields")
    for name, value in overrides.items():
        if value is None:
            continue
        if _is_list(TrainConfig.model_fields[name].annotation) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        data[name] = value
    return TrainConfig.model_validate(data)


class ProgressCallbacks(Callbacks):
    """A tqdm bar over every step of the run; a line per finished epoch; metrics.jsonl as it goes."""

    def __init__(self, metrics_path: Path, quiet: bool = False) -> None:
        self.metrics_path = metrics_path
        self.bar: tqdm | None = None
        self.quiet = quiet

    def on_step(self, step: int, total_steps: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=total_steps,
                initial=step - 1,
                unit="step",
                dynamic_ncols=True,
                disable=self.quiet,
                file=sys.stderr,
            )
        self.bar.update(step - self.bar.n)

    def on_epoch_end(self, m: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(m) + "\n")
        if self.bar is not None:
            self.bar.set_description(f"{m['phase']} epoch {m['epoch']}/{m['epochs']}")
            self.bar.write(
                f"{m['phase']:>8} {m['epoch']:>4}/{m['epochs']}  lr {m['lr']:.4g}  loss {m['train_loss']:.4f}  "
                f"obj {m['objective']:.4f}  test acc {100 * m['test_acc']:.2f}%  "
                f"zero {100 * m['zero_fraction']:.1f}%  {m['seconds']:.1f}s"
            )

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


def fail(message: str) -> typing.NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML or JSON file of config fields; flags override it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default runs/<time>).",
)
@click.option("--resume/--no-resume", default=False, help="Continue from --out's checkpoint if there is one.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_config_options
def train(config_file: str | None, out_dir: str | None, resume: bool, quiet: bool, **fields) -> None:
    """Train one network offline, prune and slim it, and write its files to --out."""
    try:
        config = build_config(config_file, fields)
    except ValidationError as err:
        fail(validation_message(err))
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        fail(f"--config {config_file}: not valid YAML/JSON ({str(err).splitlines()[0]})")
    out = Path(out_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.model_dump(), indent=2))
    metrics_path = out / "metrics.jsonl"
    if not resume:
        metrics_path.unlink(missing_ok=True)
    progress = ProgressCallbacks(metrics_path, quiet)
    try:
        result = fit(config, progress, checkpoint_dir=str(out), resume=resume)
    except DatasetNotFoundError as err:
        fail(str(err))
    except TrainingStopped as err:
        fail(str(err))
    except RuntimeError as err:
        if "device" in str(err):
            fail(str(err))
        raise
    finally:
        progress.close()
    (out / "result.json").write_text(json.dumps(result.result, indent=2))
    artifacts = export_slim(result, out)
    click.echo(summary_table(result.result))
    click.echo(
        f"wrote {', '.join(a['name'] for a in artifacts)}, config.json, metrics.jsonl, result.json to {out}"
    )
