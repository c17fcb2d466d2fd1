"""The ``novaflow`` command: one Typer app, one module per verb group, each loaded only when its verb runs.

``novaflow --help`` lists the groups from :data:`GROUPS` without importing them, and a group's module imports
its heavy libraries (pandas, pyarrow, Prefect, plotly, the data engine) inside the commands that need them, so
asking for help costs about as much as importing boto3. The CLI is the only part of ``novaflow`` that may import
Prefect (to run flows) and ``novaflow.local`` (to start the embedded AWS for ``--local``).
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping

import typer
from typer._click.core import Command, Context  # the click Typer vendors: the one its classes use
from typer.core import TyperGroup

from novaflow.cli.failures import explain

GROUPS: dict[str, tuple[str, str]] = {
    "local": (
        "novaflow.cli.local",
        "Run the embedded AWS (moto plus our patches) and the Nova service emulator on loopback.",
    ),
    "data": ("novaflow.cli.data", "Prepare, split, profile and generate datasets in the Nova formats."),
    "recipes": ("novaflow.cli.recipes", "Show and refresh Nova recipe templates and instance tables."),
    "jobs": ("novaflow.cli.jobs", "Submit, watch, tail and stop SageMaker / Bedrock training and evaluation jobs."),
    "eval": (
        "novaflow.cli.evaluate",
        "Compute gen_qa metrics, parse evaluation outputs, compare stages, build reports.",
    ),
    "infer": (
        "novaflow.cli.infer",
        "Run a model over a dataset: batch inference as a gen_qa job or a Bedrock batch job.",
    ),
    "reward": ("novaflow.cli.reward", "Build, deploy and verify the RFT reward Lambda."),
    "deploy": (
        "novaflow.cli.deploy",
        "Deploy a trained model to a SageMaker endpoint or Bedrock, invoke it, tear it down.",
    ),
    "registry": (
        "novaflow.cli.registry",
        "List, show, approve and reject the model package versions novaflow registered.",
    ),
    "run": ("novaflow.cli.run", "Run the novaflow flows (end-to-end, baseline, SFT, RFT) locally or against AWS."),
    "automations": (
        "novaflow.cli.automations",
        "Prefect automations: re-run crashed runs; notify on failed runs and runs waiting for approval.",
    ),
    "watch": ("novaflow.cli.watch", "Resume runs suspended in wait.mode suspend when their jobs end."),
}
"""verb -> (module holding its Typer ``app``, one-line help shown by ``novaflow --help``)."""


class _Root(TyperGroup):
    """The root group: a verb group is imported when a command line resolves to it, not to list it in help."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *GROUPS]

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        ctx.meta[_RESOLVING] = True
        try:
            return super().resolve_command(ctx, args)
        finally:
            ctx.meta.pop(_RESOLVING, None)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in GROUPS:
            return super().get_command(ctx, cmd_name)
        module_name, summary = GROUPS[cmd_name]
        if not ctx.meta.get(_RESOLVING):  # listing the verbs (help, completion): the one line is enough
            return TyperGroup(name=cmd_name, help=summary, short_help=summary)
        return _verb_group(importlib.import_module(module_name).app, cmd_name)


def _verb_group(app: typer.Typer, name: str) -> TyperGroup:
    """The verb's click group; its commands are built from the Typer app one by one, when asked for."""
    if app.registered_groups:  # nested groups (deploy components): built whole
        group: TyperGroup = typer.main.get_group(app)
        _plain(group)
    else:
        shell = copy.copy(app)  # the group's own settings and callback, without building its commands
        shell.registered_commands = []
        group = typer.main.get_group(shell)
        _plain(group)
        group.commands = _Commands(app)
    group.name = name
    return group


class _Commands(MutableMapping[str, Command]):
    """A verb group's commands by name, each built (parameters, types, help) the first time it is looked up.

    Start-up: building all of ``data``'s six commands and sixty options to run one of them cost ~20 ms, an
    eighth of what a small ``data prepare`` may spend above ``import pyarrow``. Help lists them all and builds
    them all, in the order they were declared.
    """

    def __init__(self, app: typer.Typer) -> None:
        self._app = app
        self._infos = {
            info.name or typer.main.get_command_name(info.callback.__name__): info
            for info in app.registered_commands
            if info.callback is not None
        }
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            command = typer.main.get_command_from_info(
                self._infos[name],
                pretty_exceptions_short=self._app.pretty_exceptions_short,
                rich_markup_mode=self._app.rich_markup_mode,
            )
            _plain(command)
            self._built[name] = command
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._infos.setdefault(name, None)  # type: ignore[arg-type]  # keeps its place in the order
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._infos[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


def _plain(command: Command) -> None:
    """Plain click help and errors: rendering them with rich costs more than the rest of ``--help`` together."""
    command.rich_markup_mode = None  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


_RESOLVING = "novaflow.resolving"


app = typer.Typer(
    name="novaflow",
    cls=_Root,
    help="Take an Amazon Nova model through data prep, SFT, RFT, evaluation and deployment - on AWS or offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the full traceback when a command fails.")) -> None:
    """Parsed here so the root accepts it; :func:`main` reads it before the command runs."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every failure a user can fix is one red line with a hint and exit code 2.

    ``novaflow --debug VERB ...`` (or ``NOVAFLOW_DEBUG=1``) lets the traceback through instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: _verb_position(args)]
    try:
        app(args=args, prog_name="novaflow", standalone_mode=True)
    except SystemExit as done:
        if argv is None and done.code in (0, None) and _skips_teardown(args):
            _exit_now()
        raise
    except Exception as exc:
        if debug or os.environ.get("NOVAFLOW_DEBUG"):
            raise
        typer.secho(f"error: {explain(exc)}", err=True, fg=typer.colors.RED)
        sys.exit(2)


FAST_EXIT = (("data", "prepare"),)
"""Commands whose process ends without the interpreter's teardown once they succeed: freeing the ~200 modules and
their objects one by one measured ~50 ms, a fifth of a small ``data prepare``'s fixed cost. They return only after
every file they write is closed and every worker process and writing thread is joined; nothing of theirs runs at
exit. The one thread that may still run is closing a replaced, already unlinked file
(:func:`novaflow.data.file_swap.release_later`): the exit closes it the same way, freeing its blocks."""


def _skips_teardown(args: list[str]) -> bool:
    start = _verb_position(args)
    return tuple(args[start : start + 2]) in FAST_EXIT


def _exit_now() -> None:
    """Exit 0 at once: the standard streams and logging handlers flushed, the interpreter's teardown skipped."""
    logging = sys.modules.get("logging")  # flushed if anything imported it; not imported for this
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _verb_position(args: list[str]) -> int:
    for i, arg in enumerate(args):
        if arg in GROUPS:
            return i
    return len(args)
