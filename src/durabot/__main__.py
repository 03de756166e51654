"""Lets ``python -m durabot`` run the command-line interface."""

from durabot.cli import app

app(prog_name="durabot")
