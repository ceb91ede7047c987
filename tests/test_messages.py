"""The comm messages: labextension/src/messages.ts and livestack_nb/widgets/_messages.py agree,
type by type and field by field, and what the widgets send is what they declare."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

import livestack_nb as ls
import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.testing import wait_until
from livestack_nb.widgets import _messages

MESSAGES_TS = Path(__file__).resolve().parent.parent / "labextension" / "src" / "messages.ts"

# -- both sides to one canonical spelling ------------------------------------------------

PRIMITIVES_TS = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
    "unknown": "unknown",
}


def _ts_type(text: str) -> str:
    """A TypeScript type (the forms messages.ts keeps to) in canonical form."""
    pos = 0
    src = text.strip()

    def peek() -> str:
        return src[pos:].lstrip()[:1]

    def skip() -> None:
        nonlocal pos
        while pos < len(src) and src[pos] == " ":
            pos += 1

    def union() -> str:
        nonlocal pos
        parts = [postfix()]
        skip()
        while pos < len(src) and src[pos] == "|":
            pos += 1
            parts.append(postfix())
            skip()
        return _union(parts)

    def postfix() -> str:
        nonlocal pos
        t = primary()
        skip()
        while src.startswith("[]", pos):
            pos += 2
            t = f"array<{t}>"
            skip()
        return t

    def primary() -> str:
        nonlocal pos
        skip()
        if src[pos] == "(":
            pos += 1
            t = union()
            skip()
            assert src[pos] == ")", text
            pos += 1
            return t
        if src.startswith("Record<string,", pos):
            pos += len("Record<string,")
            t = union()
            skip()
            assert src[pos] == ">", text
            pos += 1
            return f"record<{t}>"
        if src[pos] == "'":
            end = src.index("'", pos + 1)
            lit = src[pos : end + 1]
            pos = end + 1
            return lit
        m = re.match(r"[A-Za-z_]\w*", src[pos:])
        assert m, f"cannot read {text!r} at {src[pos:]!r}"
        pos += m.end()
        return PRIMITIVES_TS.get(m.group(0), m.group(0))

    out = union()
    skip()
    assert pos == len(src), f"left over in {text!r}: {src[pos:]!r}"
    return out


def _union(parts: list[str]) -> str:
    flat: set[str] = set()
    for p in parts:
        flat.update(p[len("union<") : -1].split(",") if p.startswith("union<") else [p])
    return next(iter(flat)) if len(flat) == 1 else "union<" + ",".join(sorted(flat)) + ">"


def _py_type(tp: Any) -> str:
    """A Python annotation (as resolved by get_type_hints) in the same canonical form."""
    if tp is str:
        return "string"
    if tp in (int, float):
        return "number"
    if tp is bool:
        return "boolean"
    if tp is type(None) or tp is None:
        return "null"
    if tp is object or tp is Any:
        return "unknown"
    origin = get_origin(tp)
    if origin is Literal:
        return _union([f"'{a}'" for a in get_args(tp)])
    if origin in (typing.Union, types.UnionType):
        return _union([_py_type(a) for a in get_args(tp)])
    if origin is list:
        return f"array<{_py_type(get_args(tp)[0])}>"
    if origin is dict:
        key, value = get_args(tp)
        assert key is str, tp
        return f"record<{_py_type(value)}>"
    if typing.is_typeddict(tp):
        return tp.__name__
    raise AssertionError(f"no canonical form for {tp!r}")


# -- reading each side -------------------------------------------------------------------


def _ts_side() -> tuple[dict[str, dict[str, tuple[str, bool]]], dict[str, set[str]]]:
    """messages.ts: {object type: {field: (type, optional)}} and {union: member names}."""
    text = MESSAGES_TS.read_text()
    objects: dict[str, dict[str, tuple[str, bool]]] = {}
    for name, body in re.findall(r"export type (\w+) = \{\n(.*?)\n\};", text, flags=re.S):
        fields: dict[str, tuple[str, bool]] = {}
        for line in body.splitlines():
            line = line.strip()
            if not line or line.startswith(("//", "/*", "*")):
                continue
            m = re.fullmatch(r"(\w+)(\??): (.+);", line)
            assert m, f"{name}: cannot read the field {line!r}"
            fields[m.group(1)] = (_ts_type(m.group(3)), m.group(2) == "?")
        objects[name] = fields
    unions: dict[str, set[str]] = {}
    for name, members in re.findall(r"export type (\w+) = ([\w |]+);", text):
        unions[name] = {m.strip() for m in members.split("|")}
    return objects, unions


def _py_side() -> tuple[dict[str, dict[str, tuple[str, bool]]], dict[str, set[str]]]:
    objects: dict[str, dict[str, tuple[str, bool]]] = {}
    unions: dict[str, set[str]] = {}
    for name in _messages.__all__:
        obj = getattr(_messages, name)
        if typing.is_typeddict(obj):
            hints = get_type_hints(obj)
            objects[name] = {f: (_py_type(t), f in obj.__optional_keys__) for f, t in hints.items()}
        else:
            unions[name] = {a.__name__ for a in get_args(obj)}
    return objects, unions


def _expand(unions: dict[str, set[str]]) -> dict[str, set[str]]:
    """Unions of unions, flattened to their object types."""

    def flat(name: str) -> set[str]:
        return set().union(*(flat(m) if m in unions else {m} for m in unions[name]))

    return {name: flat(name) for name in unions}


def test_the_two_sides_name_the_same_messages():
    ts_objects, ts_unions = _ts_side()
    py_objects, py_unions = _py_side()
    text = MESSAGES_TS.read_text()
    # the parser read every type there is (none skipped), and there are many
    assert len(ts_objects) == text.count(" = {\n") >= 20
    assert len(ts_unions) == len(re.findall(r"export type \w+ = [\w |]+;", text)) >= 8
    assert sorted(ts_objects) == sorted(py_objects)
    assert sorted(ts_unions) == sorted(py_unions)
    assert _expand(ts_unions) == {k: v for k, v in _expand(py_unions).items()}


@pytest.mark.parametrize("name", sorted(_py_side()[0]))
def test_each_message_has_the_same_fields_types_and_optional_ones_on_both_sides(name):
    ts_objects, _ = _ts_side()
    py_objects, _ = _py_side()
    assert ts_objects[name] == py_objects[name]


def test_the_canonical_forms_tell_types_apart():
    """The comparison is not vacuous: different types read differently."""
    assert _ts_type("(number | null)[][]") == "array<array<union<null,number>>>"
    assert _ts_type("Record<string, GraphNodeState>") == "record<GraphNodeState>"
    assert _ts_type("'job' | 'stream' | 'plot'") == "union<'job','plot','stream'>"
    assert _py_type(list[list[float | None]]) == _ts_type("(number | null)[][]")
    assert _py_type(list[str]) != _ts_type("number[]")
    assert _py_type(Literal["image", "audio"]) == _ts_type("'image' | 'audio'")
    assert _is({"type": "state", "nodes": {}, "edges": {}, "status": "running"}, _messages.GraphState)
    assert not _is({"type": "state", "nodes": {}, "edges": {}}, _messages.GraphState)  # a key missing
    assert not _is({"type": "hello", "x": 1}, _messages.Hello)  # a key too many
    assert not _is({"status": 3}, _messages.GraphNodeState)  # a value of another type


# -- what the widgets send conforms -------------------------------------------------------


def _is(value: Any, tp: Any) -> bool:
    """Whether ``value`` (JSON data) is of the annotation ``tp`` (a TypedDict: exactly its keys)."""
    if tp is object or tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp in (str, int, bool):
        return type(value) is tp
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in get_args(tp))
    if origin is list:
        return isinstance(value, list) and all(_is(v, get_args(tp)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and _is(v, get_args(tp)[1]) for k, v in value.items()
        )
    if typing.is_typeddict(tp):
        hints = get_type_hints(tp)
        return (
            isinstance(value, dict)
            and tp.__required_keys__ <= set(value) <= set(hints)
            and all(_is(v, hints[k]) for k, v in value.items())
        )
    raise AssertionError(f"cannot check {tp!r}")


def _conforms(msg: dict[str, Any], union: Any) -> str:
    """The name of the member of ``union`` that ``msg`` is (exactly its keys, of its types)."""
    fits = [m.__name__ for m in get_args(union) if _is(msg, m)]
    assert fits, f"{msg!r} is none of {[m.__name__ for m in get_args(union)]}"
    return fits[0]


def test_every_message_the_widgets_send_is_one_they_declare(comms, env):
    @ls.job_spec
    def halve(x: int) -> float:
        return x / 2

    stream = DataStream("numbers")
    stream.push([{"n": 1}, {"n": 2}])
    table, plot = lw.StreamTable(stream), lw.StreamPlot(stream, y="n")
    job = halve.start()
    graph, panel = lw.FlowGraph(job), lw.JobPanel(job)
    widgets = {table: _messages.TableMessage, plot: _messages.PlotMessage}
    widgets |= {graph: _messages.GraphMessage, panel: _messages.PanelMessage}
    for w in widgets:
        w.comm.hello()
    job.feed_many([1, 2, 3])
    job.end()
    job.wait(timeout=10)
    stream.push([{"n": 3, "extra": "a new column"}])
    stream.end()
    seen: dict[Any, set[str]] = {w: set() for w in widgets}

    def all_kinds() -> bool:
        for w, union in widgets.items():
            seen[w] = {_conforms(m, union) for m in w.comm.custom()}
        return all(len(kinds) >= 2 for kinds in seen.values())  # a reset and a change each

    wait_until(all_kinds, timeout=10, message="a reset and a change from every widget")
    assert seen[table] == {"TableReset", "TableRows"} and seen[plot] == {"PlotReset", "PlotPoints"}
    assert seen[graph] == {"GraphReset", "GraphState"} and seen[panel] == {"PanelReset", "PanelState"}


def test_a_stepped_runs_graph_and_table_send_what_they_declare_and_take_what_the_browser_sends(comms, env):
    from test_stage_widgets import pizzeria

    run = pizzeria().start(step=True)
    graph = lw.FlowGraph(run)
    table = lw.StreamTable(run.output("boxes"))
    graph.comm.hello()
    table.comm.hello()
    run.input("orders").feed("margherita")
    # what the browser sends, as the front end builds it: each is one of BrowserMessage
    step: _messages.StageStep = {"type": "step"}
    for request in (step, {"type": "play", "interval": 0.0}):
        assert _conforms(request, _messages.BrowserMessage)
        graph.comm.front(request)
    run.input("orders").end()
    run.wait(timeout=10)
    boxed = run.output("boxes").datapoints()[0]
    show: dict[str, Any] = {"type": "journey", "datapoint": boxed.id}
    row: dict[str, Any] = {"type": "journey", "seq": "0"}
    assert _conforms(show, _messages.BrowserMessage) == "ShowJourney"
    assert _conforms(row, _messages.BrowserMessage) == "TableJourney"
    graph.comm.front(show)
    table.comm.front(row)
    seen: set[str] = set()

    def all_kinds() -> bool:
        seen.update(_conforms(m, _messages.GraphMessage) for m in graph.comm.custom())
        return {"GraphReset", "GraphHops", "GraphJourney"} <= seen

    wait_until(all_kinds, timeout=10, message="a reset with its stage, hops and a journey")
    reset = next(m for m in graph.comm.custom() if m["type"] == "reset")
    assert _is(reset["stage"], _messages.GraphStage)
    assert {_conforms(m, _messages.TableMessage) for m in table.comm.custom()} >= {"TableReset"}
