"""JobInput and bind without a browser: the form follows the tag's type, Feed feeds, errors stay inline."""

from __future__ import annotations

import enum
from typing import Any, Literal

import ipywidgets
import pytest
from pydantic import BaseModel, Field

import livestack_nb as ls
from livestack_nb.testing import wait_until

lw = ls.widgets


class Size(enum.Enum):
    small = 10
    large = 14


class Crust(BaseModel):
    thickness: float = 1.0
    stuffed: bool = False


class Order(BaseModel):
    pizza: str
    size: int = Field(12, gt=0, le=20)
    spicy: bool = False
    oven: Literal["wood", "gas"] = "wood"
    box: Size = Size.small
    crust: Crust = Crust()


def _echo(tp: Any, name: str) -> ls.JobSpec:
    spec = ls.JobSpec(name, input=tp, output=tp)
    spec.define_worker(lambda v: v)
    return spec


def _kinds(form: lw.JobInput) -> dict[str, str]:
    return {p: type(f.control).__name__ for p, f in form.form.fields.items()}


def test_the_form_follows_the_models_fields(env, comms):
    job = _echo(Order, "orders").start()
    form = lw.JobInput(job)
    assert _kinds(form) == {
        "pizza": "Text",
        "size": "IntText",
        "spicy": "Checkbox",
        "oven": "Dropdown",
        "box": "Dropdown",
        "crust.thickness": "FloatText",
        "crust.stuffed": "Checkbox",
    }
    # defaults are shown; the nested model is a fieldset
    assert form.form.fields["size"].control.value == 12
    assert form.form.fields["oven"].control.options == (("wood", "wood"), ("gas", "gas"))
    assert [label for label, _ in form.form.fields["box"].control._options_full] == ["small", "large"]
    assert any("lsnb-fieldset" in w._dom_classes for w in form.form.box.children)
    job.cancel()


def test_submit_feeds_what_the_form_holds_and_end_ends(env, comms):
    job = _echo(Order, "orders2").start()
    form = lw.JobInput(job)
    assert form.submit(pizza="funghi", size=10, crust={"stuffed": True}, box=Size.large)
    # the button does the same with what the form holds now
    form.form.fields["pizza"].control.value = "margherita"
    form.feed_button.click()
    form.end_button.click()
    job.wait(timeout=10)
    out = job.result()
    assert [(o.pizza, o.size, o.crust.stuffed, o.box) for o in out] == [
        ("funghi", 10, True, Size.large),
        ("margherita", 10, True, Size.large),
    ]
    assert form.fed == 2 and form.feed_button.disabled
    assert "ended" in form.status.value


def test_a_value_that_does_not_fit_shows_its_error_by_the_field_and_feeds_nothing(env, comms):
    job = _echo(Order, "orders3").start()
    form = lw.JobInput(job)
    assert not form.submit(pizza="funghi", size=99)
    assert list(form.errors) == ["size"]
    size_error = form.form.fields["size"].error
    assert size_error.value == "Input should be less than or equal to 20"  # pydantic's words by the field
    assert "spec 'orders3', input tag 'default'" in size_error.tooltip  # the whole error on hover
    assert form.errors["size"].startswith("spec 'orders3', input tag 'default' expects Order: field 'size'")
    assert form.form.fields["pizza"].error.value == ""
    assert len(job.input().stream) == 0 and form.fed == 0
    # a nested field's error goes next to that field
    assert not form.submit(size=12, crust={"thickness": "thick"})
    assert list(form.errors) == ["crust.thickness"]
    assert form.form.fields["crust.thickness"].error.value
    assert len(job.input().stream) == 0
    # once it fits, the errors go and the value is fed
    assert form.submit(crust={"thickness": 2.5})
    assert form.errors == {} and form.form.fields["crust.thickness"].error.value == ""
    wait_until(lambda: len(job.output()) == 1, timeout=10)
    job.end()
    job.wait(timeout=10)


def test_a_scalar_tag_is_one_field(env, comms):
    job = _echo(int, "numbers").start()
    form = lw.JobInput(job)
    assert _kinds(form) == {"value": "IntText"}
    assert form.submit(value=3) and form.submit(value=4)
    text = lw.JobInput(_echo(str, "words").start())
    assert _kinds(text) == {"value": "Text"}
    assert text.submit(value="hi")
    # a type without a control of its own takes JSON text
    lists = _echo(list[int], "lists").start()
    js = lw.JobInput(lists)
    assert _kinds(js) == {"value": "Text"}
    assert js.submit(value="[1, 2]")
    assert not js.submit(value='["a"]')
    assert "value" in js.errors and js.form.fields["value"].error.value
    job.end()
    lists.end()
    assert job.result(timeout=10) == [3, 4]
    assert lists.result(timeout=10) == [[1, 2]]
    text.job.cancel()


def test_a_form_of_an_ended_input_says_so_and_feeds_nothing(env, comms):
    job = _echo(int, "closed").start()
    form = lw.JobInput(job)
    job.end()
    job.wait(timeout=10)
    assert not form.submit(value=1)
    assert "ended" in form.status.value and "ended" in form.errors[""]


def test_bad_arguments_are_named(env, comms):
    job = _echo(Order, "orders4").start()
    with pytest.raises(ls.LivestackError, match="nope"):
        lw.JobInput(job, tag="nope")
    form = lw.JobInput(job)
    with pytest.raises(TypeError, match=r"no field 'colour' \(its fields: 'pizza', 'size'"):
        form.submit(colour="red")
    with pytest.raises(TypeError, match="JobHandle"):
        lw.JobInput(Order)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"job\.input\(tag\)"):
        lw.bind(ipywidgets.IntSlider(), job)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'value' trait"):
        lw.bind(ipywidgets.Button(), job.input())
    job.cancel()


def test_a_flow_runs_input_takes_a_form(env, comms):
    double = ls.JobSpec("double", input=int, output=int)
    double.define_worker(lambda x: 2 * x)
    first = _echo(int, "pass_on")
    flow = ls.Liveflow("doubler")
    flow.connect(first, double)
    flow.expose(first.input(), "numbers")
    flow.expose(double.output(), "doubled")
    run = flow.start()
    form = lw.JobInput(run, tag="numbers")
    assert _kinds(form) == {"value": "IntText"}
    assert form.submit(value=21)
    assert not form.submit(value="x")
    form.end()
    run.wait(timeout=10)
    assert run.output("doubled").values() == [42]


def test_bind_feeds_each_change_and_stops_when_disposed(env, comms):
    job = _echo(float, "oven").start()
    slider = ipywidgets.FloatSlider(value=180, min=0, max=300)
    binding = lw.bind(slider, job.input(), transform=lambda v: v + 0.5)
    slider.value = 200
    slider.value = 220
    assert binding.fed == 2
    # a value that does not fit is not fed; the error is kept and shown as the tooltip
    words = ipywidgets.Text()
    bad = lw.bind(words, job.input())
    words.value = "hot"
    assert bad.fed == 0 and isinstance(bad.error, ls.DataValidationError)
    assert "float" in words.tooltip and slider.tooltip is None
    binding.dispose()
    slider.value = 10
    assert binding.fed == 2
    job.end()
    assert job.result(timeout=10) == [200.5, 220.5]


def test_a_form_and_a_binding_have_static_snapshots_that_escape(env, comms):
    spec = ls.JobSpec("<b>hot</b>", input=str, output=str)
    spec.define_worker(lambda s: s)
    job = spec.start()
    form = lw.JobInput(job)
    snap = form.snapshot_html()
    assert 'class="lsnb-snapshot"' in snap and "&lt;b&gt;hot&lt;/b&gt;" in snap and "<b>hot" not in snap
    assert "value: Text" in snap
    box = ipywidgets.Text(value="<i>x</i>")
    binding = lw.bind(box, job.input())
    assert "&lt;i&gt;x&lt;/i&gt;" in binding.snapshot_html() and "<i>" not in binding.snapshot_html()
    job.cancel()


def test_rerunning_a_cell_unbinds_its_controls_and_closes_its_form(env, comms):
    from livestack_nb.widgets._scope import scope

    job = _echo(int, "rerun").start()
    slider = ipywidgets.IntSlider()
    scope.enter_cell("cell-a")
    binding = lw.bind(slider, job.input())
    form = lw.JobInput(job)
    scope.enter_cell("cell-b")
    slider.value = 1
    assert binding.fed == 1
    scope.enter_cell("cell-a")  # the cell runs again: its binding and its form go
    slider.value = 2
    assert binding.fed == 1 and binding.disposed
    assert form.comm is None and form.feed_button.comm is None
    scope.enter_cell(None)
    job.end()
    assert job.result(timeout=10) == [1]
