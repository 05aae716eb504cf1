"""``opsbench live``: the benchmarked policies and the security analyser on a real AWS
account, through the protocols of :mod:`adapters.protocols` (boto3 implementations).

``scale`` runs a policy on EKS managed node groups (Auto Scaling groups with
``--self-managed``) every ``--interval`` seconds and writes one decision record per node
group; shadow by default (no write call at all), ``--apply`` writes desired sizes within
the guardrails (:mod:`adapters.live.guardrails`). ``security`` scores new CloudTrail
records (trail files in S3, or ``lookup_events``) and writes the alerts; ``--cursor FILE``
keeps the reader's cursor between runs (``--once`` from cron), ``--since`` says where the
first read starts.

Everything the user gives is checked before anything is written: a bad flag, an unknown
policy, a node group the cluster does not have, or a policy live mode cannot run prints
one line and exits 2. Credentials come only from boto3's default chain and never appear
in the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.table import Table

from adapters.live.guardrails import Guardrails
from adapters.times import minute_floor, naive_utc, utc_now
from bench.cli.common import command_group, models_option, path_option, status, stdout
from sim.errors import InputError, OpsbenchError

if TYPE_CHECKING:
    from bench.runner import PreparedRun

live = command_group(
    "live",
    "Live AWS mode: run a policy on EKS node groups (shadow by default) and score CloudTrail.",
)

GUARDRAIL_FLAGS = {
    "max_step_nodes": "--max-step",
    "budget_usd_per_hour": "--budget-usd-per-hour",
    "cooldown_s": "--cooldown",
    "kill_switch": "--kill-switch",
    "max_metrics_age_s": "--max-metrics-age",
}


def guardrails(**values: Any) -> Guardrails:
    """The guardrails from the flags; a bad value raises InputError naming its flag."""
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return Guardrails(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        flag = GUARDRAIL_FLAGS.get(key, key)
        raise InputError(
            flag,
            "",
            f"{given.get(key)!r}: {err['msg']}",
            Guardrails.model_fields[key].description or "",
        ) from None


def nodegroup_names(text: str) -> tuple[str, ...]:
    """``N[,N...]`` as names (no empty name, no repeat)."""
    names = tuple(n.strip() for n in text.split(","))
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise InputError(
            "--nodegroup", "", f"{text!r}", "node group names, comma-separated, each once"
        )
    return names


def check_out_file(out: Path | None) -> None:
    """``--out`` must be a file path whose folder exists (records are appended)."""
    if out is None:
        return
    if out.is_dir():
        raise InputError(out, "--out", "is a directory", "a JSON-lines file path")
    if not out.parent.is_dir():
        raise InputError(out, "--out", "its folder does not exist", "a path in an existing folder")


def earlier_records(out: Path | None) -> list[dict[str, Any]]:
    """The decision records already in ``out`` (for the cooldown across runs)."""
    if out is None or not out.exists():
        return []
    rows = []
    for number, line in enumerate(out.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                out,
                f"line {number}",
                f"not JSON ({exc.msg})",
                "the JSON lines an earlier opsbench live run wrote",
            ) from None
        if isinstance(row, dict):
            rows.append(row)
    return rows


@contextmanager
def appending(out: Path | None) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    """Yields ``write(record)``: one JSON line appended to ``out`` (flushed), or nothing."""
    if out is None:
        yield lambda _record: None
        return
    fh: IO[str] = out.open("a", encoding="utf-8")
    try:

        def write(record: Mapping[str, Any]) -> None:
            fh.write(json.dumps(record, sort_keys=False) + "\n")
            fh.flush()

        yield write
    finally:
        fh.close()


def decision_table(records: Sequence[Mapping[str, Any]]) -> Table:
    """One interval's decisions for a terminal."""
    first = records[0] if records else {}
    table = Table(title=f"{first.get('time', '')} {first.get('policy', '')} ({first.get('mode')})")
    for column in ("node group", "current", "proposed", "target", "applied", "reason"):
        table.add_column(column, justify="left" if column in ("node group", "reason") else "right")
    for r in records:
        target = "" if r["target_desired"] is None else str(r["target_desired"])
        table.add_row(
            r["nodegroup"],
            str(r["current_desired"]),
            str(r["proposed_desired"]),
            target,
            "yes" if r["applied"] else "no",
            r["reason"],
        )
    return table


def aws_loop_options(between: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--region``, ``--endpoint-url``, ``--interval`` (seconds between ``between``) and
    ``--once``: what both loops take."""
    options = (
        click.option("--region", default=None, help="AWS region (default: boto3's configuration)"),
        click.option("--endpoint-url", default=None, help="an AWS-compatible endpoint (moto)"),
        click.option(
            "--interval",
            "interval_s",
            type=click.FloatRange(min=0, min_open=True),
            default=60.0,
            show_default=True,
            help=f"seconds between {between}",
        ),
        click.option("--once", is_flag=True, help="run one interval and exit"),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def run_loop(label: str, step: Callable[[datetime], None], interval_s: float, once: bool) -> None:
    """``step`` every ``interval_s`` seconds (once with ``once``) until interrupted."""
    from adapters.live.loop import run_every

    try:
        run_every(step, interval_s=interval_s, once=once, clock=utc_now)
    except KeyboardInterrupt:
        status(f"{label}: stopped")


# --------------------------------------------------------------------------- scale


def live_policy(name: str, scenario: str) -> PreparedRun:
    """The policy object a replay of ``scenario`` builds for ``--policy name`` (its
    parameters the scenario's when it names the same policy; its model is attached
    later, :func:`bench.runner.attach_model`), with the prepared world whose service the
    live context describes."""
    from bench.runner import prepare_run

    prepared = prepare_run(scenario, policy=name, lifecycle="off")
    policy = prepared.policy
    if policy.needs.foresight:
        raise InputError(
            "--policy",
            "",
            f"{name!r} foresees the workload (a limit for replays), which live mode cannot",
            "a policy without foresight (opsbench policies)",
        )
    return prepared


def check_nodegroups(groups: Any, names: Sequence[str], cluster: str) -> list[Any]:
    """Every named group's description; an unknown one raises InputError."""
    known = list(groups.list())
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(
            "--nodegroup",
            "",
            f"node group {missing[0]!r} not found in cluster {cluster!r}",
            ", ".join(sorted(known)) or "(the cluster has none)",
        )
    return [groups.describe(n) for n in names]


def check_catalogue(infos: Sequence[Any], catalogue: Any, given: Path | None) -> None:
    """Every instance type of the node groups has a vCPU count, memory and on-demand
    price in the catalogue (the shipped one, with ``--on-demand-prices`` over it)."""
    if catalogue is None:
        return
    for info in infos:
        for itype in info.instance_types:
            if itype not in catalogue:
                where = str(given) if given is not None else "--on-demand-prices"
                region = getattr(catalogue, "region", "the region")
                raise InputError(
                    where,
                    "",
                    f"instance type {itype!r} of node group {info.name!r} has no on-demand "
                    f"row for {region} (the shipped catalogue lists {len(catalogue)} types)",
                    "a CSV with its row: instance_type,region,vcpus,memory_gib,gpu,"
                    "on_demand_usd_per_hour,operating_system,source",
                )


def check_history(policy_name: str, history: Any, metrics_file: Path) -> None:
    """A policy that learns from the load before it starts needs
    :data:`~agents.scaling.history.MIN_HISTORY_DAYS` of it from the metrics source."""
    from adapters.live.context import history_days
    from agents.scaling.history import MIN_HISTORY_DAYS

    if history is None:
        raise InputError(
            "--policy",
            "",
            f"{policy_name!r} learns from the load of the days "
            "before it starts; this metrics source gives only the freshest minute",
            "a policy without history (reactive, the cost rules), or a metrics source with history",
        )
    days = history_days(history)
    if days < MIN_HISTORY_DAYS:
        raise InputError(
            str(metrics_file),
            "request_rate_rps",
            f"CloudWatch holds {days:.2f} days of the node groups' request rate and "
            f"{policy_name!r} learns from the {MIN_HISTORY_DAYS:g} days before it starts",
            f"a policy without history (reactive, the cost rules), or >= {MIN_HISTORY_DAYS:g} "
            "days of 1-minute request rate",
        )


@live.command("scale")
@click.option(
    "--policy", "policy_name", required=True, help="a registered policy (opsbench policies)"
)
@click.option(
    "--scenario",
    default="default",
    show_default=True,
    help="the scenario the policy was benchmarked on: its service (pod size, "
    "requests/s per vCPU, SLO) and the policy's parameters and model",
)
@click.option("--cluster", required=True, help="the EKS cluster name")
@click.option("--nodegroup", "nodegroups", required=True, help="node group names, N[,N...]")
@click.option("--self-managed", is_flag=True, help="the groups are Auto Scaling groups")
@path_option(
    "--metrics",
    "metrics_file",
    required=True,
    help="YAML: the CloudWatch metric queries of each node group (README: Live mode)",
)
@click.option(
    "--notices-queue-url",
    default=None,
    help="the SQS queue EventBridge sends EC2 spot interruption warnings to (counted as "
    "the groups' interruptions)",
)
@path_option(
    "--on-demand-prices",
    default=None,
    help="CSV of instance types (the shipped catalogue's columns) over the shipped one: "
    "types it lacks, or your own prices",
)
@aws_loop_options("decisions")
@click.option("--apply", "apply_", is_flag=True, help="write desired sizes (within guardrails)")
@click.option(
    "--max-step",
    "max_step_nodes",
    type=int,
    default=None,
    help="at most this many nodes up or down per interval [default: 2]",
)
@click.option(
    "--budget-usd-per-hour",
    type=float,
    default=None,
    help="cap on the node groups' cost per hour (on-demand and current spot prices)",
)
@click.option(
    "--cooldown",
    "cooldown_s",
    type=float,
    default=None,
    help="seconds between two writes to one group [default: 300]",
)
@path_option(
    "--kill-switch",
    default=None,
    help="while this file exists nothing is written [default: opsbench-live.stop]",
)
@click.option(
    "--max-metrics-age",
    "max_metrics_age_s",
    type=float,
    default=None,
    help="metrics older than this (seconds) are stale: hold [default: 300]",
)
@click.option("--model", default=None, help="the model version (NAME[/VERSION|@ALIAS])")
@models_option
@path_option("--out", default=None, help="JSON lines to append the decision records to")
@click.option("--json", "as_json", is_flag=True, help="print each decision record as a JSON line")
def scale_cmd(
    policy_name: str,
    scenario: str,
    cluster: str,
    nodegroups: str,
    self_managed: bool,
    metrics_file: Path,
    notices_queue_url: str | None,
    on_demand_prices: Path | None,
    region: str | None,
    endpoint_url: str | None,
    interval_s: float,
    once: bool,
    apply_: bool,
    max_step_nodes: int | None,
    budget_usd_per_hour: float | None,
    cooldown_s: float | None,
    kill_switch: Path | None,
    max_metrics_age_s: float | None,
    model: str | None,
    models_dir: str,
    out: Path | None,
    as_json: bool,
) -> None:
    """Run POLICY on the node groups every --interval seconds; shadow unless --apply."""
    from adapters.live import aws
    from adapters.live.context import live_context, read_history
    from adapters.live.loop import LiveScaler, last_writes_from

    rails = guardrails(
        max_step_nodes=max_step_nodes,
        budget_usd_per_hour=budget_usd_per_hour,
        cooldown_s=cooldown_s,
        kill_switch=kill_switch,
        max_metrics_age_s=max_metrics_age_s,
    )
    names = nodegroup_names(nodegroups)
    check_out_file(out)
    last_writes = last_writes_from(earlier_records(out))
    queries = aws.metrics_config(metrics_file)
    prepared = live_policy(policy_name, scenario)
    with aws.aws_errors_as_one_line(f"live scale: reading cluster {cluster!r}"):
        backends = aws.scaling_backends(
            cluster=cluster,
            metrics=queries,
            region=region,
            endpoint_url=endpoint_url,
            self_managed=self_managed,
            on_demand_prices=on_demand_prices,
            notices_queue_url=notices_queue_url,
        )
        infos = check_nodegroups(backends.groups, names, cluster)
        aws.check_metrics_cover(queries, names, metrics_file)
        check_catalogue(infos, backends.catalogue, on_demand_prices)
        start = minute_floor(utc_now())
        policy = prepared.policy
        history = read_history(backends.metrics, names, start)
        if policy.needs.model == "scaling":
            check_history(policy_name, history, metrics_file)
        if policy.needs.model is not None:
            from bench.runner import attach_model

            attach_model(prepared, models_dir=models_dir, model=model, progress=status)
            policy = prepared.policy
        types = sorted({t for i in infos for t in i.instance_types})
        azs = sorted({az for i in infos for az in i.azs})
        context = live_context(
            prepared.world,
            infos,
            backends.market.offerings(types, azs),
            cluster=cluster,
            start=start,
            interval_s=interval_s,
            history=history,
            catalogue=backends.catalogue,
        )
    scaler = LiveScaler(
        policy,
        context,
        metrics=backends.metrics,
        groups=backends.groups,
        market=backends.market,
        names=names,
        rails=rails,
        apply=apply_,
        cluster=cluster,
        last_writes=last_writes,
    )
    mode = "apply (within guardrails)" if apply_ else "shadow (nothing is written)"
    if not as_json:
        status(f"live scale: {policy.name} on {cluster}/{','.join(names)}, {mode}")
        if once and apply_:
            status(
                "live scale: --once starts the policy afresh: its own windows (e.g. reactive's "
                "scale-down stabilisation) do not carry over between runs; the guardrails' "
                "cooldown does, through --out"
            )
    with appending(out) as write:
        failed: list[str] = []

        def step(now: datetime) -> None:
            try:
                records = scaler.step(now)
            except aws.aws_error_types() as exc:  # retries spent: hold, try next interval
                failed.append(aws.aws_error_line(exc))
                records = scaler.hold_all(now, f"hold: AWS call failed: {failed[-1]}")
            for rec in records:
                write(rec)
                if as_json:
                    click.echo(json.dumps(rec))
            if not as_json:
                stdout.print(decision_table(records))

        run_loop("live scale", step, interval_s, once)
    if once and failed:
        raise OpsbenchError(f"live scale: the interval held: AWS call failed: {failed[-1]}")


# --------------------------------------------------------------------------- security


SINCE_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
SINCE_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SINCE_ALLOWED = (
    "an ISO 8601 time (2024-05-01T12:00:00Z; no zone: UTC) or a duration before now (30m, 1h, 2d)"
)
LOOKUP_LAG_S = 900.0
"""Default lag of a ``lookup_events`` read: an event reaches lookup minutes after it
happens (typically about 5) and the lookup cursor never goes back, so the read stops 15
minutes before now."""
TRAIL_LAG_S = 120.0
"""Default lag of a trail-files read: files are read by key per region folder, so a late
file is never missed; the lag only lets files of the same minute finish landing in S3."""


def since_time(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time or a duration before ``now``, as naive UTC."""
    match = SINCE_DURATION.fullmatch(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * SINCE_UNITS_S[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError("--since", "", repr(text), SINCE_ALLOWED) from None
    moment = naive_utc(moment)
    if moment > now:
        raise InputError("--since", "", f"{text!r} is in the future", SINCE_ALLOWED)
    return moment


@live.command("security")
@click.option("--trail-bucket", default=None, help="the S3 bucket CloudTrail delivers to")
@click.option("--prefix", default="", help="the trail's key prefix in the bucket")
@click.option("--lookup", is_flag=True, help="read CloudTrail lookup_events instead")
@aws_loop_options("reads")
@path_option(
    "--cursor",
    "cursor_file",
    default=None,
    help="keep the reader's cursor in this file: a run resumes where the last one stopped",
)
@click.option(
    "--since",
    default="1h",
    show_default=True,
    help="where the first read (no cursor yet) starts: an ISO 8601 time or a duration "
    "before now (30m, 1h, 2d)",
)
@click.option(
    "--lag",
    "lag_s",
    type=click.FloatRange(min=0),
    default=None,
    help="seconds before now each read stops, for CloudTrail's delivery delay "
    f"[default: {LOOKUP_LAG_S:g} with --lookup, {TRAIL_LAG_S:g} for trail files]",
)
@models_option
@path_option("--out", default=None, help="JSON lines to append the alerts to")
@click.option("--json", "as_json", is_flag=True, help="print each alert as a JSON line")
def security_cmd(
    trail_bucket: str | None,
    prefix: str,
    lookup: bool,
    region: str | None,
    endpoint_url: str | None,
    interval_s: float,
    once: bool,
    cursor_file: Path | None,
    since: str,
    lag_s: float | None,
    models_dir: str,
    out: Path | None,
    as_json: bool,
) -> None:
    """Score new CloudTrail records as they appear; write the alerts (and what could not
    be read, as malformed lines)."""
    from adapters.live import aws
    from adapters.live.security import LiveAuditScorer, read_cursor_file, write_cursor_file

    if (trail_bucket is None) == (not lookup):
        raise InputError(
            "--trail-bucket/--lookup",
            "",
            "give exactly one",
            "--trail-bucket B [--prefix P], or --lookup",
        )
    if lookup and prefix:
        raise InputError("--prefix", "", "only with --trail-bucket", "--trail-bucket B --prefix P")
    check_out_file(out)
    source = f"s3://{trail_bucket}/{prefix}" if trail_bucket else f"lookup_events {region or ''}"
    source = source.strip()
    start = since_time(since, utc_now())
    cursor = read_cursor_file(cursor_file, source) if cursor_file is not None else None
    model = security_model(models_dir)
    log = aws.audit_log(
        region=region,
        endpoint_url=endpoint_url,
        trail_bucket=trail_bucket,
        prefix=prefix,
        since=start,
    )
    lag = lag_s if lag_s is not None else (LOOKUP_LAG_S if lookup else TRAIL_LAG_S)
    scorer = LiveAuditScorer(model, log, cursor=cursor, lag_s=lag)
    begin = f"from {cursor_file}" if cursor is not None else f"from {start.isoformat()}Z"
    failed: list[str] = []
    with appending(out) as write:

        def step(now: datetime) -> None:
            try:
                batch = scored_batch(scorer, now, cursor_file)
            except aws.aws_error_types() as exc:  # retries spent: the cursor stays, try again
                failed.append(aws.aws_error_line(exc))
                click.echo(f"opsbench: warning: {source}: AWS call failed: {failed[-1]}", err=True)
                return
            if not as_json and scorer.totals["reads"] == 1:  # said once the cursor is good
                status(f"live security: {source}, {begin}, reads stop {lag:g} s before now")
            for line in [*batch.malformed, *batch.alerts]:
                write(line)
                if as_json:
                    click.echo(json.dumps(line))
            if cursor_file is not None:  # after the alerts: a crash between rescores
                write_cursor_file(cursor_file, source, batch.cursor, written_at=now)
            for bad in batch.malformed:
                click.echo(f"opsbench: warning: {source}: {bad['where']}: {bad['error']}", err=True)
            if not as_json:
                kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(batch.kinds.items()))
                stdout.print(
                    f"{now.isoformat()} {source}: {batch.read:,} records"
                    f"{f' ({kinds})' if kinds else ''}, {batch.scored:,} scored, "
                    f"{len(batch.alerts):,} alerts, {len(batch.malformed):,} malformed"
                )

        run_loop("live security", step, interval_s, once)
    if once and failed:
        raise OpsbenchError(f"live security: {source}: AWS call failed: {failed[-1]}")


def scored_batch(scorer: Any, now: datetime, cursor_file: Path | None) -> Any:
    """``scorer.step(now)``; a reader's refusal of the cursor names the cursor file."""
    try:
        return scorer.step(now)
    except InputError as exc:
        if cursor_file is None or exc.field != "cursor":
            raise
        raise InputError(cursor_file, "cursor", exc.problem, exc.allowed) from None


def security_model(models_dir: str) -> Any:
    """The shipped analyser the replay's audit watcher uses, from the registry (registered
    from the shipped training at first use); the default registry: the analyser's own."""
    from agents.lifecycle.open import open_registry
    from agents.lifecycle.registry import fetch_and_load
    from agents.security.artefact import load_folder
    from bench.runner import MODELS_DIR
    from bench.security_model import default_model_dir, shipped_version

    location = default_model_dir() if Path(models_dir) == MODELS_DIR else models_dir
    registry = open_registry(location)
    version = shipped_version(registry, progress=status)
    return fetch_and_load(registry, version, load_folder)
