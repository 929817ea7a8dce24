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

from .common import CommandError, fail, read_mapping

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
@click.option(
    "--target-pruned",
    type=float,
    default=None,
    metavar="SHARE",
    help="Search λ (proxns) until a run prunes this share of the channels (0-1), instead of giving --lam.",
)
@click.option(
    "--target-flops",
    type=float,
    default=None,
    metavar="SHARE",
    help="Search λ (proxns) until a run removes this share of the FLOPs (0-1; a quarter left is 0.75).",
)
@click.option("--tolerance", type=float, default=None, help="How close counts as met (default 0.02).")
@click.option("--max-jobs", type=int, default=None, help="Most runs the search makes (default 8).")
@_config_options
def train(
    config_file: str | None,
    out_dir: str | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    target_pruned: float | None,
    target_flops: float | None,
    tolerance: float | None,
    max_jobs: int | None,
    **fields,
) -> None:
    """Train one network offline, prune and slim it, and write its files to --out.

    With --target-pruned or --target-flops, search λ instead (one run after another, on a log scale
    from the config's λ or the method's default): every run goes to --out/search/lam-<λ>/, the run
    that met the budget (or the closest) is copied to --out, and --out/search.json lists every run
    and why the search stopped. Exit code 0 when the budget was met, 3 when it was not (the closest
    run is in --out, the last line says why).
    """
    if resume and overwrite:
        fail("--resume continues the run in --out, --overwrite replaces it: give one of them")
    search = _search_spec(target_pruned, target_flops, tolerance, max_jobs, fields, resume)
    try:
        config = build_config(config_file, fields)
    except ValidationError as err:
        fail(validation_message(err))
    out = Path(out_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    if search is not None:
        _train_to_budget(config, search, out, overwrite, quiet)
        return
    prepare_out(out, config, resume, overwrite)
    result, artifacts = _run(config, out, resume, quiet)
    click.echo(summary_table(result))
    click.echo(
        f"wrote {', '.join(a['name'] for a in artifacts)}, config.json, metrics.jsonl, result.json to {out}"
    )


def _search_spec(
    target_pruned: float | None,
    target_flops: float | None,
    tolerance: float | None,
    max_jobs: int | None,
    fields: dict,
    resume: bool,
):
    """The budget of ``--target-pruned`` / ``--target-flops`` (None without one); fails on bad input."""
    if target_pruned is None and target_flops is None:
        if tolerance is not None or max_jobs is not None:
            fail("--tolerance and --max-jobs go with --target-pruned or --target-flops")
        return None
    if target_pruned is not None and target_flops is not None:
        fail("--target-pruned and --target-flops: give one of them")
    flag = "--target-pruned" if target_pruned is not None else "--target-flops"
    if fields.get("lam") is not None:
        fail(f"{flag} searches λ itself: leave out --lam")
    if fields.get("method") not in (None, "proxns"):
        why = (
            "ns prunes its share by construction: set --prune-ratio instead"
            if fields["method"] == "ns"
            else "a baseline prunes nothing"
        )
        fail(f"{flag} searches λ of method proxns, not {fields['method']!r} ({why})")
    if resume:
        fail(f"{flag} cannot --resume: run the search again with --overwrite")
    from proxns_core.search import SearchSpec

    values = {
        "target": "pruned_fraction" if target_pruned is not None else "flops_fraction",
        "value": target_pruned if target_pruned is not None else target_flops,
        "tolerance": tolerance,
        "max_jobs": max_jobs,
        "parallel": 1,
    }
    try:
        return SearchSpec.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        names = {"value": flag, "tolerance": "--tolerance", "max_jobs": "--max-jobs"}
        fail(
            "; ".join(
                f"{names.get(str(e['loc'][0]), flag)}: {e['msg'].removeprefix('Value error, ')} (got {e['input']!r})"
                for e in err.errors()
            )
        )


def _lam_dir(lam: float) -> str:
    return f"lam-{lam:.6g}"


def _train_to_budget(config: TrainConfig, search, out: Path, overwrite: bool, quiet: bool) -> None:
    """``proxns train --target-*``: the runs of a λ search, sequentially, the best copied to ``out``."""
    import shutil

    from proxns_core.search import search_lam
    from proxns_core.spec import method_default

    if config.method != "proxns":
        fail(
            f"a budget search varies λ of method proxns, not {config.method!r} (ns: set prune_ratio instead)"
        )
    prepare_out(out, config, False, overwrite)
    runs = out / "search"
    if (runs.exists() or (out / "search.json").exists()) and not overwrite:
        fail(f"--out {out} already holds a search (search/, search.json); --overwrite replaces it")
    shutil.rmtree(runs, ignore_errors=True)
    (out / "search.json").unlink(missing_ok=True)
    start = config.lam if config.lam is not None else method_default("lam", config.method, config.arch)
    share = "pruned" if search.target == "pruned_fraction" else "FLOPs removed"
    click.echo(
        f"searching λ for {100 * search.value:.1f} % {share} (± {100 * search.tolerance:.1f} %), "
        f"at most {search.max_jobs} runs, from λ {start:.4g}"
    )
    tried: list[dict] = []

    def run(lam: float) -> dict | None:
        folder = runs / _lam_dir(lam)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = config.model_copy(update={"lam": lam})
        cfg = TrainConfig.model_validate(cfg.model_dump())
        try:
            result, _ = _run(cfg, folder, False, quiet, exit_on_error=False)
        except CommandError:  # the data set or device is missing: every run would fail alike
            raise
        except Exception as err:  # noqa: BLE001 - a failed run counts toward --max-jobs, as in the service
            click.echo(f"run {len(tried) + 1}: λ {lam:.4g} failed: {type(err).__name__}: {err}")
            tried.append(
                {"lam": lam, "value": None, "folder": str(folder.relative_to(out)), "error": str(err)}
            )
            return None
        from proxns_core.search import measured

        value = measured(search.target, result)
        click.echo(f"run {len(tried) + 1}: λ {lam:.4g} → {100 * value:.1f} % {share}")
        tried.append({"lam": lam, "value": value, "folder": str(folder.relative_to(out))})
        return result

    decision, _points = search_lam(search, float(start), run)
    best = decision.best
    if best is not None:
        source = runs / _lam_dir(best.lam)
        for path in source.iterdir():
            if path.is_file() and path.name not in (CHECKPOINT_FILE, CHECKPOINT_PARTIAL):
                shutil.copy2(path, out / path.name)
    summary = {
        "search": search.model_dump(),
        "start_lam": start,
        "status": decision.status,
        "reason": decision.reason,
        "best": None
        if best is None
        else {"lam": best.lam, "value": best.value, "folder": _lam_dir(best.lam)},
        "points": tried,
    }
    (out / "search.json").write_text(json.dumps(summary, indent=2))
    if best is None:
        fail(f"no run of the search succeeded: {decision.reason}")
    click.echo(summary_table(json.loads((out / "result.json").read_text())))
    if decision.status == "met":
        click.echo(f"met: {decision.reason}; its files are in {out}, every run under {runs}")
        return
    click.echo(f"closest: {decision.reason}; its files are in {out}, every run under {runs}")
    raise SystemExit(3)


def _run(config: TrainConfig, out: Path, resume: bool, quiet: bool, exit_on_error: bool = True) -> tuple:
    """One run of ``config`` into ``out`` (config.json, metrics.jsonl, result.json, model files)."""

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
        if not exit_on_error and not isinstance(
            err, (DatasetNotFoundError, DeviceUnavailableError, WeightsError)
        ):
            raise
        fail(f"--init-weights {config.init_weights}: {err}" if isinstance(err, WeightsError) else str(err))
    finally:
        progress.close()
    result = _as_dict(fitted.result)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    artifacts = export_slim(fitted, out)
    return result, artifacts
