"""The command line explains itself: every option of every command has help."""

from __future__ import annotations

import argparse

from lenasim.cli import COMMANDS, build_parser


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, p in sub.choices.items()
        for action in p._actions
        if not (action.help or "").strip()
    ]
    assert not missing, f"options without help: {missing}"
