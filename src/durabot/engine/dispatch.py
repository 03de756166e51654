"""Decides what one event means — a command, an answer, a button — and produces the step's replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from datetime import datetime, timedelta

from durabot.engine.conversation import Conversation
from durabot.engine.events import Command, Event, EventKind
from durabot.engine.ports import UnitOfWork
from durabot.engine.registry import AnswerRejected, FlowEntry, Registry
from durabot.flows import render
from durabot.flows.model import MAX_ANSWER_LENGTH, Answers, InvalidAnswer, Step
from durabot.replies import CallbackAnswer, Outgoing, Reply

FLOW_BUTTON_PREFIX = "f:"
EXPIRED_BUTTON = "This button has expired."
CONTROL_COMMANDS = ("skip", "back", "cancel")


@dataclass(frozen=True)
class Context:
    """What every step handler needs: the event, its transaction and the time it is applied at."""

    event: Event
    uow: UnitOfWork
    now: datetime


class Dispatcher:
    """Routes events to flows and commands; all writes go through the given unit of work."""

    def __init__(self, registry: Registry, ttl: timedelta) -> None:
        self._registry = registry
        self._ttl = ttl

    async def apply(self, event: Event, uow: UnitOfWork, now: datetime) -> list[Outgoing]:
        """The replies to ``event``; domain and conversation writes are made through ``uow``."""
        ctx = Context(event, uow, now)
        conversation, expired = await self._load_active(ctx)
        command = Command.parse(event.text or "") if event.kind is EventKind.TEXT else None
        notice = ""
        if expired is not None:
            resuming = command is not None and command.name in (expired.flow.command, expired.resume_command)
            notice = expired.actions.expired_notice(expired.flow, resuming) or ""
        if conversation is not None:
            await self._entry(conversation).actions.touched(uow, event.user_id, self._handler_name(event))
        if event.kind is EventKind.CALLBACK:
            return await self._on_button(ctx, conversation)
        if event.kind is EventKind.CONTENT:
            return self._with_notice(notice, self._on_content(ctx, conversation))
        if command is not None:
            return self._with_notice(notice, await self._on_command(ctx, conversation, command))
        return self._with_notice(notice, await self._on_text(ctx, conversation, notice))

    # -- loading -------------------------------------------------------------------------

    async def _load_active(self, ctx: Context) -> tuple[Conversation | None, FlowEntry | None]:
        """The active conversation, or ``None`` and the flow of one that just turned out expired (and was removed)."""
        conversation = await ctx.uow.conversations.active(ctx.event.user_id, ctx.event.chat_id)
        if conversation is None:
            return None, None
        entry = self._registry.flow_named(conversation.flow_name)
        if entry is None or conversation.is_expired(ctx.now):
            assert conversation.id is not None
            await ctx.uow.conversations.delete(conversation.id)
            return None, entry
        return conversation, None

    @staticmethod
    def _handler_name(event: Event) -> str:
        if event.kind is EventKind.CALLBACK:
            return "button"
        if event.kind is EventKind.CONTENT:
            return "content"
        command = Command.parse(event.text or "")
        return f"command:{command.name}" if command else "answer"

    @staticmethod
    def _with_notice(notice: str, replies: list[Outgoing]) -> list[Outgoing]:
        return [Reply(notice), *replies] if notice else replies

    def _entry(self, conversation: Conversation) -> FlowEntry:
        entry = self._registry.flow_named(conversation.flow_name)
        assert entry is not None, "active conversations always belong to a registered flow"
        return entry

    # -- typed text and other content -----------------------------------------------------

    async def _on_text(self, ctx: Context, conversation: Conversation | None, notice: str) -> list[Outgoing]:
        """A typed answer, or — with nothing in progress — a pointer to the commands."""
        if conversation is None:
            if notice:
                return []
            for entry in self._registry.flows:
                if await entry.actions.opened(ctx.uow, ctx.event.user_id, False) is not None:
                    notice = entry.actions.expired_notice(entry.flow, False) or ""
                    return [Reply(notice)] if notice else []
            return [Reply(f"I'm not asking you anything right now.\n\n{self._registry.help_text()}")]
        return await self._answer(ctx, conversation, ctx.event.text or "")

    def _on_content(self, ctx: Context, conversation: Conversation | None) -> list[Outgoing]:
        what = ctx.event.content_type or "that"
        if conversation is None:
            return [Reply(f"I can't do anything with a {what} here.\n\n{self._registry.help_text()}")]
        entry = self._entry(conversation)
        lead = f"I can't use a {what} here — please type your answer as text."
        return [render.question(entry.flow, conversation.answers, self._buttons(conversation), lead)]

    async def _answer(self, ctx: Context, conversation: Conversation, text: str) -> list[Outgoing]:
        entry = self._entry(conversation)
        flow = entry.flow
        step = flow.current_step(conversation.answers)
        assert step is not None, "a stored conversation always has an open question"
        try:
            value = self._parse(step, text)
            problem = await entry.actions.check(ctx.uow, ctx.event.user_id, step, value)
        except InvalidAnswer as invalid:
            problem = invalid.message
        if problem:
            return [render.question(flow, conversation.answers, self._buttons(conversation), problem)]
        return await self._advance(ctx, conversation, conversation.answers.with_answer(step.key, value))

    @staticmethod
    def _parse(step: Step, text: str) -> Any:
        """The step's value for ``text``; the limits every answer shares are checked first."""
        trimmed = text.strip()
        if not trimmed:
            raise InvalidAnswer("That answer was empty.")
        if len(trimmed) > MAX_ANSWER_LENGTH:
            raise InvalidAnswer(
                f"That answer is {len(trimmed):,} characters long; "
                f"answers can be at most {MAX_ANSWER_LENGTH:,}. Please shorten it."
            )
        return step.parse(text)

    async def _advance(self, ctx: Context, conversation: Conversation, answers: Answers) -> list[Outgoing]:
        entry = self._entry(conversation)
        lead = ""
        if entry.flow.current_step(answers) is None:
            try:
                closing = await entry.actions.complete(ctx.uow, ctx.event.user_id, answers)
            except AnswerRejected as rejected:
                answers, lead = answers.without(rejected.step_key), rejected.message
            else:
                assert conversation.id is not None
                await ctx.uow.conversations.delete(conversation.id)
                return [closing]
        await entry.actions.moved(ctx.uow, ctx.event.user_id, answers)
        saved = await ctx.uow.conversations.save(conversation.advanced(entry.flow, answers, ctx.now, self._ttl))
        return [render.question(entry.flow, answers, self._buttons(saved), lead)]

    # -- commands --------------------------------------------------------------------------

    async def _on_command(self, ctx: Context, conversation: Conversation | None, command: Command) -> list[Outgoing]:
        name = command.name
        if name in CONTROL_COMMANDS:
            if conversation is None:
                return [Reply(f"There is nothing in progress to {name}.\n\n{self._registry.help_text()}")]
            return await self._control(ctx, conversation, name)
        flow_entry = self._registry.flow_for_command(name)
        if flow_entry is not None:
            return await self._start_or_resume(ctx, flow_entry)
        alias = self._registry.flow_for_alias(name)
        if alias is not None:
            return await self._flow_alias(ctx, *alias)
        if name in ("start", "help"):
            greeting = f"Hello! {self._registry.about}\n\n" if name == "start" else ""
            return self._then_remind([Reply(f"{greeting}{self._registry.help_text()}")], conversation)
        entry = self._registry.command(name)
        if entry is not None:
            replies = await entry.handler.run(ctx.uow, ctx.event.user_id, command.argument)
            return self._then_remind(list(replies), conversation)
        unknown = f"Sorry, /{name} is not a command I know."
        if conversation is None:
            return [Reply(f"{unknown}\n\n{self._registry.help_text()}")]
        flow = self._entry(conversation).flow
        return [render.question(flow, conversation.answers, self._buttons(conversation), unknown)]

    def _then_remind(self, replies: list[Outgoing], conversation: Conversation | None) -> list[Outgoing]:
        if conversation is None:
            return replies
        flow = self._entry(conversation).flow
        lead = f"You are still {flow.title}; here is where you were:"
        return [*replies, render.question(flow, conversation.answers, self._buttons(conversation), lead)]

    async def _start_or_resume(self, ctx: Context, entry: FlowEntry, create: bool = True) -> list[Outgoing]:
        flow, actions, user_id = entry.flow, entry.actions, ctx.event.user_id
        existing = await ctx.uow.conversations.find(user_id, ctx.event.chat_id, flow.name)
        if existing is not None and not existing.is_expired(ctx.now):
            await actions.touched(ctx.uow, user_id, f"command:{flow.command}")
            saved = await ctx.uow.conversations.save(existing.advanced(flow, existing.answers, ctx.now, self._ttl))
            return [render.welcome_back(flow, saved.answers, self._buttons(saved))]
        if existing is not None:
            assert existing.id is not None
            await ctx.uow.conversations.delete(existing.id)
        answers = await actions.opened(ctx.uow, user_id, create)
        if answers is None:
            return [Reply(f"You have nothing in progress here. Send /{flow.command} to start.")]
        fresh = Conversation.start(flow, user_id, ctx.event.chat_id, ctx.now, self._ttl)
        if flow.current_step(answers) is None:
            return await self._advance(ctx, await ctx.uow.conversations.save(fresh), answers)
        saved = await ctx.uow.conversations.save(fresh.advanced(flow, answers, ctx.now, self._ttl))
        if answers.values:
            return [render.welcome_back(flow, saved.answers, self._buttons(saved))]
        return [render.question(flow, saved.answers, self._buttons(saved))]

    async def _cancel(self, ctx: Context, entry: FlowEntry, conversation: Conversation | None) -> list[Outgoing]:
        if conversation is not None and conversation.id is not None:
            await ctx.uow.conversations.delete(conversation.id)
        outcome = await entry.actions.cancelled(ctx.uow, ctx.event.user_id)
        if conversation is None and outcome is None:
            return [Reply(f"You have nothing in progress to cancel. Send /{entry.flow.command} to start.")]
        return [Reply(f"Cancelled — you are no longer {entry.flow.title}. {outcome or ''}".strip())]

    async def _flow_alias(self, ctx: Context, entry: FlowEntry, kind: str) -> list[Outgoing]:
        """The flow's own resume, cancel and status commands."""
        if kind == "resume":
            return await self._start_or_resume(ctx, entry, create=False)
        conversation = await ctx.uow.conversations.find(ctx.event.user_id, ctx.event.chat_id, entry.flow.name)
        if conversation is not None and conversation.is_expired(ctx.now):
            conversation = None
        if kind == "cancel":
            return await self._cancel(ctx, entry, conversation)
        answers = conversation.answers if conversation else await entry.actions.opened(ctx.uow, ctx.event.user_id, False)
        if answers is None:
            return [Reply(f"You have nothing in progress here. Send /{entry.flow.command} to start.")]
        return [Reply(await entry.actions.status(ctx.uow, ctx.event.user_id, answers))]

    async def _control(self, ctx: Context, conversation: Conversation, name: str) -> list[Outgoing]:
        flow = self._entry(conversation).flow
        answers = conversation.answers
        step = flow.current_step(answers)
        assert step is not None and conversation.id is not None
        if name == "cancel":
            return await self._cancel(ctx, self._entry(conversation), conversation)
        if name == "skip":
            if not step.optional:
                lead = f"The {step.label.lower()} is needed, so it can't be skipped."
                return [render.question(flow, answers, self._buttons(conversation), lead)]
            return await self._advance(ctx, conversation, answers.with_answer(step.key, None))
        previous = answers.without_last()
        if previous is None:
            lead = "This is the first question; there is nothing to go back to."
            return [render.question(flow, answers, self._buttons(conversation), lead)]
        earlier, key = previous
        await self._entry(conversation).actions.moved(ctx.uow, ctx.event.user_id, earlier)
        saved = await ctx.uow.conversations.save(conversation.advanced(flow, earlier, ctx.now, self._ttl))
        lead = f"Going back. Your previous answer was: {render.show_value(answers.values[key])}"
        return [render.question(flow, earlier, self._buttons(saved), lead)]

    # -- buttons ---------------------------------------------------------------------------

    @staticmethod
    def _buttons(conversation: Conversation) -> render.ButtonData:
        def data(code: str) -> str:
            return f"{FLOW_BUTTON_PREFIX}{conversation.id}:{conversation.version}:{code}"

        return data

    async def _on_button(self, ctx: Context, conversation: Conversation | None) -> list[Outgoing]:
        data = ctx.event.text or ""
        callback_id = ctx.event.callback_id or ""
        expired: list[Outgoing] = [CallbackAnswer(callback_id, EXPIRED_BUTTON)]
        if data.startswith(FLOW_BUTTON_PREFIX):
            replies = await self._flow_button(ctx, conversation, data[len(FLOW_BUTTON_PREFIX) :])
        elif routed := self._registry.button_handler(data):
            handler, rest = routed
            pressed = await handler.press(ctx.uow, ctx.event.user_id, rest)
            replies = list(pressed) if pressed is not None else None
        else:
            replies = None
        if replies is None:
            return expired
        return [CallbackAnswer(callback_id), *replies]

    async def _flow_button(self, ctx: Context, conversation: Conversation | None, data: str) -> list[Outgoing] | None:
        parts = data.split(":")
        if conversation is None or len(parts) != 3:
            return None
        if parts[0] != str(conversation.id) or parts[1] != str(conversation.version):
            return None
        code = parts[2]
        if code == render.SKIP:
            return await self._control(ctx, conversation, "skip")
        if code == render.CANCEL:
            return await self._control(ctx, conversation, "cancel")
        if code == render.BACK:
            return await self._control(ctx, conversation, "back")
        step = self._entry(conversation).flow.current_step(conversation.answers)
        if step is None or not (code.isascii() and code.isdigit()) or int(code) >= len(step.choices):
            return None
        return await self._answer(ctx, conversation, step.choices[int(code)].value)
