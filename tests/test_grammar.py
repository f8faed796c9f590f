"""The parser and Tab completion read a command's words the same way.

For every command (built-ins and shipped plugins) and many word sequences
made from its own params (switches, options with separate, attached and
`--opt=` values, combined switches, positionals, `--`), the parser is the
oracle: the param it gives the next word to is the one whose kind Tab
completes; the options Tab offers are exactly those the parser takes as
options there (bar those already given); an attached value (`-ieth0`)
completes as the value of its option.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from netns_shell.commands import build_registry
from netns_shell.commands.registry import Command, Param, parse_arguments
from netns_shell.completion import CompletionState, candidates, expected_at
from netns_shell.errors import UsageError
from netns_shell.extensions import PluginLoader

REGISTRY = build_registry()
PluginLoader(lambda message: None)(REGISTRY)
PROBE = "zz9"  # a word typed before
NEXT = "zz8"  # the word after them: where the parser puts it tells what it is
STATE = CompletionState(interfaces={"eth0": "veth"}, namespaces={"blue": "named"})


def _grammar_only(command: Command) -> Command:
    """The same grammar without value checks: any word fits any value, nothing required."""
    params = tuple(replace(p, convert=None, choices=(), required=False) for p in command.params)
    return replace(command, params=params)


def _parse(command: Command, words: list[str]) -> dict | None:
    try:
        return parse_arguments(_grammar_only(command), words)
    except UsageError:
        return None


def _holds(args: dict, param: Param, value) -> bool:
    got = args.get(param.dest)
    return value in got if param.rest else got == value


def _taker(command: Command, ctx: list[str]) -> Param | None:
    """The param the parser gives a word typed after `ctx` to (None: it refuses one)."""
    args = _parse(command, [*ctx, NEXT])
    if args is None:
        return None
    takers = [p for p in command.params if not p.is_switch and _holds(args, p, NEXT)]
    assert len({p.dest for p in takers}) == 1, (ctx, takers)
    return takers[-1]


def _kind(command: Command, ctx: list[str], param: Param) -> str:
    kind = param.complete or "none"
    before = _parse(command, ctx) or {}
    if param.rest and before.get(param.dest) and kind == "program":
        return "file"  # a program's own arguments
    return kind


def _as_option(command: Command, ctx: list[str], flag: str, param: Param) -> bool:
    """Whether the parser takes `flag` after `ctx` as that option."""
    if param.is_switch:
        args = _parse(command, [*ctx, flag])
        return (
            args is not None
            and args[param.dest] == param.const
            and (_parse(command, ctx) or {}).get(param.dest) != param.const
        )
    args = _parse(command, [*ctx, flag, NEXT])
    return args is not None and args[param.dest] == NEXT


def _contexts(command: Command) -> list[list[str]]:
    """Word sequences a user types before the word being completed."""
    shorts = [f for p in command.params for f in p.flags if len(f) == 2 and f[0] == "-"]
    switches = [f for f in shorts if command_param(command, f).is_switch]
    valued = [f for f in shorts if not command_param(command, f).is_switch]
    ctxs: list[list[str]] = [[], ["--"], [PROBE], [PROBE, PROBE], ["--", PROBE]]
    for p in command.params:
        for flag in p.flags:
            if p.is_switch:
                ctxs.append([flag])
            else:
                ctxs.append([flag, PROBE])
                ctxs.append([f"{flag}={PROBE}"] if flag.startswith("--") else [flag + PROBE])
    for a in switches:
        for b in switches:
            if a != b:
                ctxs.append([f"-{a[1]}{b[1]}"])
        for v in valued:
            ctxs.append([f"-{a[1]}{v[1]}{PROBE}"])
            ctxs.append([f"-{a[1]}{v[1]}", PROBE])
    ctxs += [[*ctx, PROBE] for ctx in list(ctxs)]
    return [ctx for ctx in ctxs if _parse(command, ctx) is not None]


def command_param(command: Command, flag: str) -> Param:
    return next(p for p in command.params if flag in p.flags)


def _line(command: Command, ctx: list[str], typed: str = "") -> str:
    return " ".join([command.name, *ctx, typed])


def _offered(text: str) -> set[str]:
    return {w for w, _ in candidates(expected_at(REGISTRY, text), REGISTRY, STATE)}


COMMANDS = [c.name for c in REGISTRY]


@pytest.mark.parametrize("name", COMMANDS)
def test_the_next_word_completes_as_what_the_parser_takes_it_for(name):
    command = REGISTRY.get(name)
    for ctx in _contexts(command):
        expect = expected_at(REGISTRY, _line(command, ctx))
        taker = _taker(command, ctx)
        if taker is None:
            assert expect.kind == "none" and not expect.choices, (ctx, expect)
            continue
        assert expect.kind == _kind(command, ctx, taker), (ctx, taker.dest, expect)
        assert expect.choices == taker.choices, (ctx, expect)
        # every choice offered is accepted there by the parser (checking that param's choices)
        checked = replace(
            command,
            params=tuple(
                replace(p, convert=None, required=False, choices=p.choices if p is taker else ())
                for p in command.params
            ),
        )
        try:
            parse_arguments(checked, ctx)
        except UsageError:
            continue  # ctx put a probe word where only choices go
        for choice in expect.choices:
            args = parse_arguments(checked, [*ctx, choice])
            assert _holds(args, taker, choice), (ctx, choice)


@pytest.mark.parametrize("name", COMMANDS)
def test_options_offered_are_the_options_the_parser_takes(name):
    command = REGISTRY.get(name)
    for ctx in _contexts(command):
        for typed, dashed in (("-", True), ("", False)):
            offered = _offered(_line(command, ctx, typed))
            accepted, already = set(), set()
            for p in command.params:
                for flag in p.flags:
                    if flag.startswith("-") != dashed:
                        continue
                    if _as_option(command, ctx, flag, p):
                        accepted.add(flag)
                    elif (_parse(command, ctx) or {}).get(p.dest) not in (None, []):
                        already.add(flag)  # given before: the parser takes it again, Tab not
            flags = {f for p in command.params for f in p.flags}
            offered_options = offered & flags
            assert offered_options <= accepted | already, (ctx, typed, offered_options - accepted)
            assert accepted - offered_options <= already | _given_words(ctx), (
                ctx,
                typed,
                accepted - offered_options,
            )


def _given_words(ctx: list[str]) -> set[str]:
    """Flags named by the words of ctx, also inside clusters and `--opt=value`."""
    given = set()
    for word in ctx:
        given.add(word.partition("=")[0])
        if len(word) > 2 and word[0] == "-" and word[1] != "-":
            given |= {"-" + letter for letter in word[1:]}
    return given


@pytest.mark.parametrize("name", COMMANDS)
def test_an_attached_value_completes_as_its_options_value(name):
    command = REGISTRY.get(name)
    switches = [f for p in command.params if p.is_switch for f in p.flags if len(f) == 2]
    for p in command.params:
        if p.is_switch or not p.flags:
            continue
        for flag in p.flags:
            forms = [f"{flag}="] if flag.startswith("--") else []
            if len(flag) == 2 and flag[0] == "-":
                forms += [flag] + [f"-{s[1]}{flag[1]}" for s in switches]
            for attached in forms:
                args = _parse(command, [attached + PROBE])
                assert args is not None and args[p.dest] == PROBE, (attached, p.dest)
                expect = expected_at(REGISTRY, f"{name} {attached}et")
                assert (expect.kind, expect.attached, expect.prefix) == (
                    p.complete or "none",
                    attached,
                    "et",
                ), attached
                if p.complete == "interface":
                    assert _offered(f"{name} {attached}et") == {f"{attached}eth0"}


def test_examples_of_agreement():
    # what main's parser accepted and the old completer misread
    assert expected_at(REGISTRY, "ping -c1 ").kind == "none"  # HOST: no kind, not a count
    assert _offered("capture -ieth0 -") >= {"-c", "-w", "-n"}
    assert "-i" not in _offered("capture -ieth0 -")
    assert _offered("capture -ni") == {"-nieth0"}
    assert expected_at(REGISTRY, "capture -nc ").kind == "none"  # -c's value N
    assert _offered("capture -nc 5 -i ") == {"eth0"}
    assert _offered("routes -4 table m") == {"main"}
    assert _offered("exec -a ") >= {"ls", "sh"}
    assert expected_at(REGISTRY, "exec -a ip ").kind == "file"
    assert _offered("links -- ") == {"eth0"}
    assert _offered("ping -M ") == {"do", "dont", "want"}


def test_after_a_pipe_programs_then_files_after_a_redirection_a_file():
    assert {"grep", "wc"} <= _offered("fdb | ")
    assert _offered("fdb | gre") >= {"grep"}
    assert _offered("fdb|wc -l|gre") >= {"grep"}
    assert expected_at(REGISTRY, "fdb | grep ").kind == "file"
    assert expected_at(REGISTRY, "links -d > /tm").kind == "file"
    assert expected_at(REGISTRY, "links -d > /tm").prefix == "/tm"
    assert expected_at(REGISTRY, "links -d >>").kind == "file"
    assert expected_at(REGISTRY, "links > f ").kind == "none"
    assert expected_at(REGISTRY, "links | grep x; li").kind == "command"
    # a quoted '|' is a word: here links' IFACE, so nothing more is expected
    assert expected_at(REGISTRY, "links '|' ").kind == "none"
    assert expected_at(REGISTRY, "links \\| ").kind == "none"
