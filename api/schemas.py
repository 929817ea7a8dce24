"""Request and response shapes of the REST API, and the functions that turn rows into them.

The config, the result and the epoch metrics are the spec's (``proxns_core.spec``): they are used
here as they are, never restated, so OpenAPI publishes every field with its type and description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.fleet import waiting_reason
from proxns_core.search import SearchSpec
from proxns_core.spec import (
    JOB_STATUSES,
    METHOD_SPECIFIC_FIELDS,
    ArtifactFormatName,
    EpochMetrics,
    Float,
    Int,
    JobStatus,
    Method,
    Penalty,
    Result,
    Text,
    TrainConfig,
    result_warnings,
)
from store.models import METRIC_FIELDS, RESULT_FIELDS, Artifact, Experiment, Job, Metric
from store.models import Result as ResultRow

Status = JobStatus
MethodName = Method
#: Largest job or experiment id (ids are 32-bit integers in the store).
MAX_ID = 2**31 - 1


class Sweep(BaseModel):
    """Lists to combine with the base config; the experiment gets their Cartesian product."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    lam: list[Float] | None = Field(
        None, min_length=1, description="λ values (not applied to baseline jobs)."
    )
    method: list[MethodName] | None = Field(None, min_length=1)
    beta: list[Float] | None = Field(
        None, min_length=1, description="β values (applied to proxns jobs only)."
    )
    seed: list[Int] | None = Field(None, min_length=1)
    prune_ratio: list[Float] | None = Field(
        None, min_length=1, description="NS prune ratios (applied to ns jobs only)."
    )
    penalty: list[Penalty] | None = Field(
        None,
        min_length=1,
        description="Sparsity penalties (applied to ns and proxns jobs; ns takes all but l0).",
    )
    penalty_a: list[Float] | None = Field(
        None,
        min_length=1,
        description="Shape parameters of tl1 / mcp / scad (applied where the penalty takes one).",
    )
    by_method: dict[str, MethodLists] | None = Field(
        None,
        description="Per-method lists, e.g. ``{ns: {lam: [0.01, 0.02]}, proxns: {lam: [0.25, 0.5, 1]}}``: "
        "a method's list replaces the shared list of that field for that method's combinations (NS and "
        "proxns need λ on different scales). Keys: methods of the experiment; fields: those the method "
        "takes (``method_fields`` in GET /api/meta).",
    )


#: The same lists as the sweep's own, for the fields a method may take (no restated types).
MethodLists = create_model(
    "MethodLists",
    __config__=ConfigDict(extra="allow", allow_inf_nan=False),
    __doc__="""One method's own lists in ``sweep.by_method``: each replaces the shared list of its field for
that method's combinations. Only the fields the method takes (``METHOD_FIELDS``, GET /api/meta's
``method_fields``) are accepted; any other key is refused by the expander with the allowed ones
named (extra keys are let through here so that its message, not pydantic's, answers).""",
    **{
        name: (Sweep.model_fields[name].annotation, Sweep.model_fields[name])
        for name in METHOD_SPECIFIC_FIELDS
    },
)
Sweep.model_rebuild()


class ExperimentCreate(BaseModel):
    """A named sweep: ``base`` is a full or partial TrainConfig, ``sweep`` the lists to vary."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Text = Field(min_length=1, max_length=200)
    base: TrainConfig
    sweep: Sweep = Field(default_factory=Sweep)
    search: SearchSpec | None = Field(
        None,
        description="A budget instead of λ lists: the jobs search λ of the base's method (proxns only) "
        "until one removes ``value`` ± ``tolerance`` of the channels (pruned_fraction) or of the FLOPs "
        "(flops_fraction). Excludes ``sweep``.",
    )
    # The base exactly as sent: defaults that depend on the method must be resolved per job.
    _raw_base: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw_base(cls, data: Any, handler: Any) -> ExperimentCreate:
        model = handler(data)
        if isinstance(data, dict) and isinstance(data.get("base"), dict):
            model._raw_base = dict(data["base"])
        return model

    @property
    def raw_base(self) -> dict[str, Any]:
        return dict(self._raw_base)


#: Bounds of the organising labels (PATCH /api/jobs/{id}, PATCH /api/experiments/{id}).
MAX_TAGS, MAX_TAG_CHARS, MAX_NOTE_CHARS = 20, 40, 10_000


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (no "Value error, " before it)."""
    return PydanticCustomError("value_error", message)


def _tag(value: str) -> str:
    """A tag: trimmed, 1..40 characters, no commas (the CLI and the filter language list tags with
    them) and no control characters."""
    text = value.strip()
    if not text or len(text) > MAX_TAG_CHARS:
        raise _invalid(f"a tag has 1 to {MAX_TAG_CHARS} characters; got {len(text)}")
    if "," in text:
        raise _invalid(f"a tag cannot contain a comma (got {text!r}); send several tags as a list")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _invalid("a tag cannot contain control characters (such as a newline)")
    return text


def _note(value: str) -> str:
    """A note may hold newlines and tabs, never other control characters (NUL...)."""
    if len(value) > MAX_NOTE_CHARS:
        raise _invalid(f"a note has at most {MAX_NOTE_CHARS} characters; got {len(value)}")
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise _invalid("a note cannot contain control characters other than newlines and tabs")
    return value


Tag = Annotated[Text, AfterValidator(_tag)]


class Labels(BaseModel):
    """What PATCH changes on a job: fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] | None = Field(
        None,
        description=f"The whole list of tags (replaces the old one): at most {MAX_TAGS}, each 1 to "
        f"{MAX_TAG_CHARS} characters without commas or control characters; duplicates dropped, order kept.",
    )
    note: Annotated[str, AfterValidator(_note)] | None = Field(
        None, description=f"A free-text note, at most {MAX_NOTE_CHARS} characters."
    )
    archived: bool | None = Field(
        None, strict=True, description="true: hide it from default lists; false: show it again."
    )

    @field_validator("tags")
    @classmethod
    def _dedupe(cls, tags: list[str] | None) -> list[str] | None:
        if tags is None:
            return None
        kept = list(dict.fromkeys(tags))
        if len(kept) > MAX_TAGS:
            raise _invalid(f"at most {MAX_TAGS} tags; got {len(kept)}")
        return kept

    def changes(self) -> dict[str, Any]:
        """The fields sent (null counts as left out)."""
        return self.model_dump(exclude_none=True)


class ExperimentPatch(Labels):
    """What PATCH changes on an experiment: its name and labels."""

    name: Text | None = Field(None, min_length=1, max_length=200, description="A new name.")

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str | None) -> str | None:
        if name is not None and not name.strip():
            raise _invalid("a name cannot be blank")
        return name


class AddJobs(BaseModel):
    """Jobs to add to an experiment: ``base`` fields override the experiment's base (left out: the
    experiment's base as it is), ``sweep`` lists as when creating it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base: dict[str, Any] = Field(
        default_factory=dict, description="Config fields overriding the experiment's base (partial)."
    )
    sweep: Sweep = Field(default_factory=Sweep)


class DryRunOut(BaseModel):
    """What a submission would create (``dry_run=true``): nothing is stored."""

    jobs: list[TrainConfig] = Field(description="The resolved config of each job it would create, in order.")
    count: int = Field(description="How many jobs it would create.")
    count_by_method: dict[str, int] = Field(description="The same count per method.")
    skipped_duplicates: int = Field(
        description="Combinations left out because they resolve to a config already made: by the same "
        "sweep, or (adding jobs) by a job the experiment has."
    )


class JobWarning(BaseModel):
    code: Literal["chance_accuracy", "layers_forced"]
    message: str


class JobOut(BaseModel):
    id: int
    experiment_id: int | None
    config: TrainConfig = Field(description="The resolved config: every default filled in.")
    status: Status
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    worker_host: str | None
    device: str | None
    progress: float
    eta_seconds: float | None
    epochs_done: int
    error: str | None
    result: Result | None = Field(description="Set once the job succeeded.")
    waiting_reason: str | None = Field(
        None,
        description="Why a queued job cannot start now: no worker registered or live, or none of the "
        "live workers can run its config (GET /api/meta lists them under ``fleet``); null otherwise.",
    )
    tags: list[str] = Field(default_factory=list, description="Free tags (PATCH to change).")
    note: str = Field("", description="A free-text note (PATCH to change).")
    archived_at: datetime | None = Field(None, description="When it was archived: hidden from default lists.")
    updated_at: datetime | None = Field(None, description="Last change of any kind.")
    warnings: list[JobWarning] = Field(
        default_factory=list,
        description="What a reader must not miss about a succeeded job: chance_accuracy (the network "
        "learnt nothing), layers_forced (layers the method emptied kept one channel).",
    )


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class JobList(Page):
    items: list[JobOut]


class MetricsOut(BaseModel):
    items: list[EpochMetrics]


class ArtifactOut(BaseModel):
    name: str
    format: ArtifactFormatName
    bytes: int
    sha256: str
    url: str


class ArtifactList(BaseModel):
    items: list[ArtifactOut]


class ExperimentSummary(BaseModel):
    id: int
    name: str
    created_at: datetime
    job_count: int
    status_counts: dict[str, int]
    search_status: Literal["running", "met", "closest", "cancelled"] | None = Field(
        None, description="Where its budget search stands (null: a plain sweep)."
    )
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    archived_at: datetime | None = None


class ExperimentList(Page):
    items: list[ExperimentSummary]


#: The result fields a plot point carries beside the job's id and sweep values.
PLOT_RESULT_FIELDS = (
    "pruned_fraction",
    "acc_full",
    "acc_slim",
    "acc_finetuned",
    "params_full",
    "params_slim",
    "flops_full",
    "flops_slim",
    "num_classes",
)
#: The config fields a plot point carries, so that jobs differing only there can be told apart.
PLOT_CONFIG_FIELDS = ("lam", "beta", "seed", "width", "prune_ratio", "epochs", "finetune_epochs", "penalty")

PlotPoint = create_model(
    "PlotPoint",
    __doc__="One succeeded job of an experiment: its sweep values and headline result fields.",
    job_id=(int, ...),
    method=(Method, ...),
    lam=(float | None, ...),
    beta=(float | None, ...),
    seed=(int, ...),
    width=(float | None, None),
    prune_ratio=(float | None, None),
    epochs=(int | None, None),
    finetune_epochs=(int | None, None),
    penalty=(str | None, None),
    warnings=(list[JobWarning], []),
    **{
        name: (Result.model_fields[name].annotation, Result.model_fields[name]) for name in PLOT_RESULT_FIELDS
    },
)


class SearchPoint(BaseModel):
    job_id: int
    lam: float
    value: float | None = Field(description="The share the job removed (null: not finished, or failed).")
    status: Status


class SearchState(BaseModel):
    """Where a budget search stands."""

    status: Literal["running", "met", "closest", "cancelled"]
    reason: str = Field(
        description="Why it stopped (met, or the closest job and why not), or what it waits for."
    )
    best_job_id: int | None
    best_lam: float | None
    best_value: float | None
    default_lam: float = Field(description="The λ the search started from.")
    points: list[SearchPoint] = Field(description="Every job of the search: λ → measured share.")
    updated_at: str | None = None


class ExperimentOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    base: dict[str, Any]
    sweep: dict[str, Any]
    search: SearchSpec | None = None
    search_state: SearchState | None = None
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    archived_at: datetime | None = None
    jobs: list[JobOut]
    points: list[PlotPoint]
    baseline_acc: float | None


class ExperimentCancelled(BaseModel):
    cancelled: list[int] = Field(description="The jobs this cancelled (those queued or running).")
    experiment: ExperimentOut


class JobsAdded(BaseModel):
    created: list[JobOut]
    skipped: int = Field(description="Combinations not created: the experiment already has their config.")
    experiment: ExperimentOut


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    broker: Literal["ok", "error"]


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which were written as UTC."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat()


def result_dict(result: ResultRow | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {k: getattr(result, k) for k in RESULT_FIELDS}


def job_dict(job: Job, result: ResultRow | None) -> dict[str, Any]:
    """The job JSON of the API contract (plain dict: lists of jobs are serialised without re-validation)."""
    return {
        "id": job.id,
        "experiment_id": job.experiment_id,
        "config": job.config,
        "status": job.status,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "attempts": job.attempts,
        "worker_host": job.worker_host,
        "device": job.device,
        "progress": job.progress,
        "eta_seconds": job.eta_seconds,
        "epochs_done": job.epochs_done,
        "error": job.error,
        "result": (res := result_dict(result)),
        "waiting_reason": waiting_reason(job),
        "tags": list(job.tags or []),
        "note": job.note or "",
        "archived_at": iso(job.archived_at),
        "updated_at": iso(job.updated_at),
        "warnings": result_warnings(res),
    }


def metric_dict(m: Metric) -> dict[str, Any]:
    return {k: getattr(m, k) for k in METRIC_FIELDS}


def artifact_dict(a: Artifact) -> dict[str, Any]:
    return {
        "name": a.name,
        "format": a.format,
        "bytes": a.bytes,
        "sha256": a.sha256,
        "url": f"/api/jobs/{a.job_id}/artifacts/{a.name}",
    }


def plot_point(job: Job, result: ResultRow) -> dict[str, Any]:
    cfg = job.config
    return {
        "job_id": job.id,
        "method": job.method,
        **{name: cfg.get(name) for name in PLOT_CONFIG_FIELDS},
        **{name: getattr(result, name) for name in PLOT_RESULT_FIELDS},
        "warnings": result_warnings(result_dict(result)),
    }


def experiment_summary(exp: Experiment, status_counts: dict[str, int]) -> dict[str, Any]:
    counts = {s: status_counts.get(s, 0) for s in JOB_STATUSES}
    return {
        "id": exp.id,
        "name": exp.name,
        "created_at": iso(exp.created_at),
        "job_count": sum(counts.values()),
        "status_counts": counts,
        "search_status": (exp.search_state or {}).get("status") if exp.search else None,
        "tags": list(exp.tags or []),
        "note": exp.note or "",
        "archived_at": iso(exp.archived_at),
    }
