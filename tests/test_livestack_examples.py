"""Livestack's server-side examples, ported to Python as a new user would write them:
a job chosen by id, fed, ended, and its output read with a ``for`` loop (``for await``)."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

import livestack_nb as ls


class Name(BaseModel):
    name: str


class Food(BaseModel):
    food: str


class Greeting(BaseModel):
    greeting: str


def test_simple_greeting(env):
    spec = ls.JobSpec("simple-greeting", input=Name, output=Greeting)

    @spec.define_worker
    async def hello(job: ls.LiveJob) -> None:
        async for data in job.input:
            await job.output.emit(Greeting(greeting=f"Hello, {data.name}!"))

    job = spec.start(job_id=f"t-{time.time_ns()}")
    for name in ["Alice", "Bob", "Charlie"]:
        job.feed({"name": name})
    job.end()
    assert [g.greeting for g in job.output()] == ["Hello, Alice!", "Hello, Bob!", "Hello, Charlie!"]


def test_multiple_input_streams(env):
    @ls.job_spec(
        name="multiple-input", inputs={"name": Name, "favorite-food": Food}, outputs={"default": Greeting}
    )
    async def hello(job: ls.LiveJob) -> None:
        info: dict[str, str] = {}
        async for tag, data in job.input.merge("name", "favorite-food"):
            if tag == "name":
                info["name"] = data.name
            else:
                info["food"] = data.food
            if "name" in info and "food" in info:
                await job.output.emit(
                    Greeting(greeting=f"Hello, {info.pop('name')}! Your favorite food is {info.pop('food')}")
                )

    job = hello.start(job_id=f"t-{time.time_ns()}")
    for name, food in zip(["Alice", "Bob", "Charlie"], ["Pizza", "Burger", "Pasta"], strict=True):
        job.input("name").feed({"name": name})
        job.input("favorite-food").feed({"food": food})
    job.end()
    assert [g.greeting for g in job.output()] == [
        "Hello, Alice! Your favorite food is Pizza",
        "Hello, Bob! Your favorite food is Burger",
        "Hello, Charlie! Your favorite food is Pasta",
    ]


class Num(BaseModel):
    num: int


class Multiply(BaseModel):
    multiply: bool


class Combined(BaseModel):
    combined: str


class Text(BaseModel):
    text: str


class Summary(BaseModel):
    summarized: str


def test_simple_liveflow_with_two_inputs_a_transform_and_outputs_read_as_they_come(env):
    @ls.job_spec(
        name="calculation-spec",
        inputs={"number-stream": Num, "boolean-stream": Multiply},
        outputs={"default": Combined},
    )
    async def calculation(job: ls.LiveJob) -> None:
        multiply = False

        async def follow_flag() -> None:
            nonlocal multiply
            async for data in job.input("boolean-stream"):
                multiply = data.multiply

        flag = asyncio.create_task(follow_flag())
        async for data in job.input("number-stream"):
            await asyncio.sleep(0.001)
            await job.output.emit(Combined(combined=f"Combine result: {data.num * (100 if multiply else 1)}"))
        await flag

    @ls.job_spec(name="summary-spec")
    def summary(data: Text) -> Summary:
        return Summary(summarized="Summary: " + data.text)

    flow = ls.Liveflow(
        "fake-liveflow",
        connections=[ls.conn(calculation, summary, transform=lambda c: Text(text=c.combined))],
        exposures=[
            ls.expose(calculation.input("number-stream"), "num"),
            ls.expose(calculation.input("boolean-stream"), "bool"),
            ls.expose(calculation.output(), "intermediate-text"),
            ls.expose(summary.output(), "final-output"),
        ],
    )
    run = flow.start(job_id=str(time.time_ns()))
    assert sorted(run.spec.inputs) == ["bool", "num"]
    assert sorted(run.spec.outputs) == ["final-output", "intermediate-text"]
    seen: list[str] = []
    run.output("intermediate-text").subscribe(lambda v: seen.append(v.combined))
    multiply = False
    for num in range(10):
        run.input("num").feed({"num": num})
        if num % 2 == 0:
            multiply = not multiply
            run.input("bool").feed({"multiply": multiply})
    run.input("num").end()
    run.input("bool").end()
    final = [r.summarized for r in run.output("final-output")]
    run.wait(timeout=10)
    assert len(final) == 10 and final == ["Summary: " + s for s in seen]
    for num, line in enumerate(final):
        assert line in (f"Summary: Combine result: {num}", f"Summary: Combine result: {num * 100}")


class Message(BaseModel):
    text: str


def test_datastream_get_or_create_subscribed_from_the_beginning(env):
    # Livestack's DataStream test: getOrCreate a unique stream, subscribe from the
    # beginning, publish a message, see it
    name = f"testStream-{time.time_ns()}"
    stream = env.stream(name, type=Message)
    seen: list[Message] = []
    stream.replay().subscribe(seen.append)
    stream.emit({"text": "Hello, World!"})
    assert seen == [Message(text="Hello, World!")]
    assert env.stream(name) is stream
    assert stream.next_value(timeout=5) == Message(text="Hello, World!")
