"""The journal route: which store new units of work go to, and how a hold lets the last journal units finish first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from durabot.journal.routing import Route


async def settle(rounds: int = 5) -> None:
    """Let every ready task run a few times, so one that could go on would have."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def engaged_route() -> Route:
    route = Route()
    route.release(engaged=True)
    return route


async def finishes_within(awaitable: Awaitable[object], seconds: float = 1.0) -> object:
    return await asyncio.wait_for(awaitable, seconds)


async def test_a_new_route_sends_units_of_work_to_the_primary() -> None:
    route = Route()
    assert route.engaged is False
    assert await route.enter() is False


async def test_a_unit_of_work_on_the_primary_is_not_counted_open_so_hold_returns_at_once() -> None:
    route = Route()
    assert await route.enter() is False
    await finishes_within(route.hold(), 0.05)


async def test_an_engaged_route_sends_units_of_work_to_the_journal() -> None:
    route = engaged_route()
    assert route.engaged is True
    assert await route.enter() is True


async def test_hold_with_no_journal_unit_open_returns_at_once() -> None:
    route = engaged_route()
    await finishes_within(route.hold(), 0.05)


async def test_hold_waits_until_the_open_journal_unit_of_work_leaves() -> None:
    route = engaged_route()
    assert await route.enter() is True
    hold = asyncio.create_task(route.hold())
    await settle()
    assert not hold.done(), "hold returned while a journal unit of work was still open"
    route.leave()
    await finishes_within(hold)


async def test_hold_waits_for_every_open_journal_unit_of_work_not_just_the_first() -> None:
    route = engaged_route()
    for _ in range(3):
        assert await route.enter() is True
    hold = asyncio.create_task(route.hold())
    for still_open in (2, 1):
        route.leave()
        await settle()
        assert not hold.done(), f"hold returned with {still_open} journal unit(s) of work still open"
    route.leave()
    await finishes_within(hold)


async def test_a_journal_unit_of_work_running_as_a_task_holds_back_hold_until_it_ends() -> None:
    route = engaged_route()
    entered, may_finish = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def unit_of_work() -> None:
        assert await route.enter() is True
        entered.set()
        await may_finish.wait()
        order.append("unit left")
        route.leave()

    async def replay_tail() -> None:
        await route.hold()
        order.append("hold returned")

    unit = asyncio.create_task(unit_of_work())
    await finishes_within(entered.wait())
    hold = asyncio.create_task(replay_tail())
    await settle()
    assert order == []
    may_finish.set()
    await finishes_within(asyncio.gather(unit, hold))
    assert order == ["unit left", "hold returned"]


async def test_while_held_a_new_unit_of_work_waits_until_release() -> None:
    route = engaged_route()
    await finishes_within(route.hold())
    enter = asyncio.create_task(route.enter())
    await settle()
    assert not enter.done(), "a unit of work went on while the route was held"
    route.release(engaged=True)
    assert await finishes_within(enter) is True


async def test_every_unit_of_work_waiting_on_a_hold_goes_on_at_release() -> None:
    route = engaged_route()
    await route.hold()
    waiting = [asyncio.create_task(route.enter()) for _ in range(3)]
    await settle()
    assert not any(task.done() for task in waiting)
    route.release(engaged=True)
    assert await finishes_within(asyncio.gather(*waiting)) == [True, True, True]


async def test_units_of_work_released_to_the_journal_are_counted_open_again() -> None:
    route = engaged_route()
    await route.hold()
    enter = asyncio.create_task(route.enter())
    await settle()
    route.release(engaged=True)
    assert await finishes_within(enter) is True
    hold = asyncio.create_task(route.hold())
    await settle()
    assert not hold.done(), "the unit of work let through at release was not counted open"
    route.leave()
    await finishes_within(hold)


async def test_release_not_engaged_sends_the_waiting_and_later_units_of_work_to_the_primary() -> None:
    route = engaged_route()
    assert await route.enter() is True
    hold = asyncio.create_task(route.hold())
    await settle()
    waiting = asyncio.create_task(route.enter())
    await settle()
    assert not waiting.done()
    route.leave()
    await finishes_within(hold)
    assert not waiting.done(), "hold's return alone let a unit of work through"
    route.release(engaged=False)
    assert route.engaged is False
    assert await finishes_within(waiting) is False
    assert await route.enter() is False
    await finishes_within(route.hold(), 0.05)  # units on the primary are not counted open


async def test_a_route_switched_back_to_the_primary_can_be_engaged_again() -> None:
    route = engaged_route()
    route.release(engaged=False)
    assert await route.enter() is False
    route.release(engaged=True)
    assert await route.enter() is True


async def test_a_unit_woken_by_a_release_that_a_new_hold_follows_at_once_waits_for_the_next_release() -> None:
    route = Route()
    route.release(engaged=True)
    await route.hold()
    woken = asyncio.create_task(route.enter())
    await asyncio.sleep(0)
    route.release(engaged=True)
    await route.hold()  # before the woken unit has run
    await asyncio.sleep(0)
    assert not woken.done(), "it waits for the gate again"
    route.release(engaged=False)
    assert await asyncio.wait_for(woken, 1.0) is False
