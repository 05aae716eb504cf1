"""The ``opsbench`` command line: one module per command group, assembled here.

Every error a user can cause prints one line on stderr (file, field, what is allowed)
and exits with code 2; nothing is written to ``--out`` when the input is bad. A bare
``opsbench`` (or a bare group) prints its help on stdout and exits 0.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import click

from bench.cli.anomaly import anomaly
from bench.cli.bench import bench
from bench.cli.deploy import deploy
from bench.cli.features import features
from bench.cli.forecast import forecast
from bench.cli.live import live
from bench.cli.models import models
from bench.cli.policies import policies
from bench.cli.replay import demo, replay
from bench.cli.scenarios import scenarios
from bench.cli.security import security
from bench.cli.serve import serve
from bench.cli.train import train
from sim.errors import OpsbenchError


def package_version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    try:
        return version("opsbench")
    except PackageNotFoundError:
        return "0+unknown"


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_version(), "--version", "-V", prog_name="opsbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """opsbench: replay cloud-operations scenarios and benchmark the policies that run them."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for command in (replay, demo, scenarios, policies, features, forecast, train, models, bench,
                anomaly, security, serve, deploy, live):  # fmt: skip
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for any input error."""
    try:
        cli.main(args=argv, prog_name="opsbench", standalone_mode=False)
    except OpsbenchError as exc:
        click.echo(f"opsbench: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        message = " ".join(exc.format_message().split())
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"opsbench: error: {message}{hint}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("opsbench: aborted", err=True)
        sys.exit(130)
