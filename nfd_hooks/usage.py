"""How the command line is built, parses and fails: only the command asked for
(``narrowed``), typer's command with click's slips mended (``Command``), and
click's usage errors as one line (``usage_message``).

``nfd_hooks.cli`` declares every command with ``cls=Command`` and turns every
usage error into ``usage_message`` on stderr.
"""

import copy
import re
from typing import List

import click
import typer
from typer.core import TyperCommand
from typer.main import get_command_name


class Command(TyperCommand):
    """typer's command, with three slips of click's mended (every command is one).

    An option that takes a value is never given the next option as its value
    (click would take ``--replay`` as the NAME of ``show --node --replay X``,
    then refuse X as an "unexpected extra argument"). The summary in
    ``nfd-hooks --help`` is the help's whole first paragraph, not click's first
    45 characters and "...". Arguments keep their help: click 8.5 sets an
    argument's help itself (to None), after typer has set it, and would list
    the arguments a second time once it is back.
    """

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        options = {
            name: param
            for param in self.get_params(ctx)
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
        }
        for token, following in zip(args, args[1:]):
            if token == "--":
                break
            taker = options.get(token)
            if taker is not None and not taker.is_flag and not taker.count and following.partition("=")[0] in options:
                raise click.UsageError(f"{token} needs a value, not the option {following}", ctx)
        return super().parse_args(ctx, args)

    def get_short_help_str(self, limit: int = 45) -> str:
        return " ".join((self.short_help or self.help or "").split("\n\n", 1)[0].split())

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from typer.utils import get_params_from_function  # only for --help

        declared = get_params_from_function(self.callback) if self.callback else {}
        for param in self.params:
            info = declared.get(param.name or "")
            if isinstance(param, click.Argument) and getattr(param, "help", None) is None and info is not None:
                param.help = getattr(info.default, "help", None)
        super().format_help(ctx, formatter)

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Nothing: typer lists the arguments with the options (click 8.5 would list them again)."""


_SUGGESTION = re.compile(r" \(?Did you mean [^?]*\?\)?")


def usage_message(error: click.ClickException) -> str:
    """click's message for a bad flag or command, on one line. click (8.2+) and
    typer both add "Did you mean 'show'?" to an unknown command: it is said once."""
    text = " ".join(error.format_message().split())
    first = _SUGGESTION.search(text)
    return text[: first.end()] + _SUGGESTION.sub("", text[first.end():]) if first else text


def narrowed(full: typer.Typer, argv: List[str]) -> typer.Typer:
    """``full`` holding only the command ``argv`` names, if it names one.

    typer turns every registered command into a click command on each start,
    about 1 ms per command here; the hook runs one. The group, its callback
    (``--version``) and the chosen command are unchanged, so parsing, errors
    and ``COMMAND --help`` are the same. Anything else (``--help``, a
    mistyped command) gets the full application.
    """
    chosen = [
        info
        for info in full.registered_commands
        if argv and info.callback is not None and (info.name or get_command_name(info.callback.__name__)) == argv[0]
    ]
    if len(chosen) != 1:
        return full
    application = copy.copy(full)
    application.registered_commands = chosen
    return application
