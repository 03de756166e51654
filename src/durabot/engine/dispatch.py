"""Decides what one event means — a command, an answer, a button — and produces the step's replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from durabot.engine.conversation import Conversation
from durabot.engine.events import Command, Event, EventKind
from durabot.engine.ports import Domains, UnitOfWork
from durabot.engine.step_view import RecordingDomains, StepConversations
from durabot.engine.writes import FlowEvent, WriteSet
from durabot.engine.registry import AnswerRejected, CommandEntry, FlowActions, FlowEntry, Registry
from durabot.flows import render
from durabot.flows.model import MAX_ANSWER_LENGTH, Answers, InvalidAnswer, Step
from durabot.replies import Button, CallbackAnswer, Outgoing, Reply

FLOW_BUTTON_PREFIX = "f:"
EXPIRED_BUTTON = "This button has expired."
CONTROL_COMMANDS = ("skip", "back", "cancel")
PRIVATE_CHAT_BUTTON = "Continue in private chat"


def in_group(event: Event) -> bool:
    """Whether the event comes from a group: a private chat's id is its user's id (groups' ids are negative)."""
    return event.chat_id != event.user_id


PHOTO_OFFERED = "_photo_offered"
"""Set among a conversation's answers while its photo waits for "Save to library" or "Not now"."""
PHOTO_OFFER = "Shall I save this machine to your library? I'll keep the photo with it."
PHOTO_KEPT = "📷 Photo kept with this machine."
PHOTO_DECLINED = "All right — I haven't kept that photo. Send it again any time."
SAVE_BUTTON = "Save to library"
NOT_NOW_BUTTON = "Not now"


@dataclass(frozen=True)
class Context:
    """What every step handler needs: the event, what the step sees and the time it is applied at.

    ``conversations`` are the event's user's in its chat; ``domains`` the stores flows, commands
    and buttons work on. Both read from the step's transaction and record writes in ``writes``.
    ``begun`` holds, by flow name, the actions a flow's :meth:`~FlowActions.begin` returned for this event.
    """

    event: Event
    conversations: StepConversations
    domains: Domains
    now: datetime
    writes: WriteSet
    begun: dict[str, FlowActions] = field(default_factory=dict)


class Dispatcher:
    """Routes events to flows and commands, and returns what the step writes as data."""

    def __init__(self, registry: Registry, ttl: timedelta) -> None:
        self._registry = registry
        self._ttl = ttl

    async def decide(self, event: Event, uow: UnitOfWork, now: datetime) -> WriteSet:
        """What ``event`` changes and the replies to it, reading from ``uow`` but writing nothing there."""
        writes = WriteSet()
        conversations = StepConversations(uow.conversations, writes, event.user_id, event.chat_id)
        ctx = Context(event, conversations, RecordingDomains(uow.domains, writes, lambda: now), now, writes)
        writes.outgoing = await self._replies(ctx)
        return writes

    async def _replies(self, ctx: Context) -> list[Outgoing]:
        event = ctx.event
        command = Command.parse(event.text or "") if event.kind is EventKind.TEXT else None
        elsewhere = self._private_elsewhere(event, command) if in_group(event) else None
        if elsewhere is not None:
            return elsewhere
        conversation, expired = await self._load_active(ctx)
        notice = await self._expiry_notice(ctx, expired, command) if conversation is None else ""
        if conversation is not None:
            await self._begin(ctx, self._entry(conversation), self._handler_name(event))
        if event.kind is EventKind.CALLBACK:
            return self._with_notice(notice, await self._on_button(ctx, conversation))
        if event.kind is EventKind.CONTENT:
            return self._with_notice(notice, await self._on_content(ctx, conversation))
        if command is not None:
            return self._with_notice(notice, await self._on_command(ctx, conversation, command))
        return self._with_notice(notice, await self._on_text(ctx, conversation, notice))

    # -- private chats only ----------------------------------------------------------------

    def _private_elsewhere(self, event: Event, command: Command | None) -> list[Outgoing] | None:
        """In a group: the pointer to the private chat if the event asks for something private-only."""
        if event.kind is EventKind.CALLBACK:
            routed = self._registry.button_handler(event.text or "")
            if routed is None or routed[0].private is None:
                return None
            return [CallbackAnswer(event.callback_id or "", routed[0].private.note)]
        entry = self._registry.private_entry(command.name, command.argument) if command else None
        return [self._private_note(entry)] if entry is not None else None

    def _private_note(self, entry: FlowEntry | CommandEntry) -> Reply:
        """"Please message me privately", with a button that opens the private chat and carries on there."""
        assert entry.private is not None
        link = self._registry.private_chat_link(entry.private)
        if link is None:
            return Reply(f"{entry.private.note} Open a private chat with me and send /{entry.command} there.")
        return Reply(entry.private.note, ((Button.link(PRIVATE_CHAT_BUTTON, link),),))

    @staticmethod
    def _kept_out(event: Event, entry: FlowEntry) -> bool:
        """Whether the flow must not run in the event's chat (a private-only flow, in a group)."""
        return entry.private is not None and in_group(event)

    # -- loading -------------------------------------------------------------------------

    async def _load_active(self, ctx: Context) -> tuple[Conversation | None, FlowEntry | None]:
        """The active conversation, or ``None`` and the flow of one that just turned out expired (and was removed).

        A conversation of a private-only flow found in a group (begun there before such flows were
        kept private) is removed without a word; its answers are with the flow's own records.
        """
        store, event = ctx.conversations, ctx.event
        while (conversation := await store.active()) is not None:
            entry = self._registry.flow_named(conversation.flow_name)
            kept_out = entry is not None and self._kept_out(event, entry)
            if entry is not None and not kept_out and not conversation.is_expired(ctx.now):
                return conversation, None
            await store.delete(conversation)
            if not kept_out:
                ctx.writes.flow_events.append(FlowEvent(conversation.flow_name, "expired"))
                return None, entry
        return None, None

    async def _expiry_notice(self, ctx: Context, expired: FlowEntry | None, command: Command | None) -> str:
        """What to say, with no conversation active, about ones that expired: found just now, or removed by the cleanup.

        The cleanup leaves a tombstone for each conversation it removes; it is taken here, so each
        expiry is told once. (While another conversation is active in the chat, a tombstone waits
        until that one is over: steps in mid-conversation, most of them, make no extra query.)
        """
        event = ctx.event
        tombstones = await ctx.conversations.take_tombstones()
        entries = [expired] if expired else []
        entries += [entry for t in tombstones if (entry := self._registry.flow_named(t.flow_name)) is not None]
        notices: list[str] = []
        for entry in entries:
            if self._kept_out(event, entry):
                continue
            notice = entry.actions.expired_notice(entry.flow, self._resumes(entry, command))
            if notice and notice not in notices:
                notices.append(notice)
        return "\n\n".join(notices)

    @staticmethod
    def _resumes(entry: FlowEntry, command: Command | None) -> bool:
        """Whether ``command`` starts or resumes the flow (its command, its resume command or its deep link)."""
        if command is None:
            return False
        if command.name == "start":
            return entry.private is not None and command.argument == entry.private.start_parameter
        return command.name in (entry.flow.command, entry.resume_command)

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
        """``replies`` led by ``notice`` (after a button's acknowledgement, which goes first)."""
        if not notice:
            return replies
        if replies and isinstance(replies[0], CallbackAnswer):
            return [replies[0], Reply(notice), *replies[1:]]
        return [Reply(notice), *replies]

    def _entry(self, conversation: Conversation) -> FlowEntry:
        entry = self._registry.flow_named(conversation.flow_name)
        assert entry is not None, "active conversations always belong to a registered flow"
        return entry

    @staticmethod
    async def _begin(ctx: Context, entry: FlowEntry, handler: str) -> None:
        """Let the flow's actions begin the event, once per event and flow; later hooks go to what they return."""
        name = entry.flow.name
        if name not in ctx.begun:
            ctx.begun[name] = await entry.actions.begin(ctx.domains, ctx.event.user_id, handler)

    @staticmethod
    def _actions(ctx: Context, entry: FlowEntry) -> FlowActions:
        """The flow's actions for this event: those its :meth:`~FlowActions.begin` returned, if it began."""
        return ctx.begun.get(entry.flow.name, entry.actions)

    # -- typed text and other content -----------------------------------------------------

    async def _on_text(self, ctx: Context, conversation: Conversation | None, notice: str) -> list[Outgoing]:
        """A typed answer, or — with nothing in progress — a pointer to the commands."""
        if conversation is None:
            if notice:
                return []
            for entry in self._registry.flows:
                if self._kept_out(ctx.event, entry):
                    continue
                if await self._actions(ctx, entry).opened(ctx.domains, ctx.event.user_id, False) is not None:
                    notice = entry.actions.expired_notice(entry.flow, False) or ""
                    return [Reply(notice)] if notice else []
            return [Reply(f"I'm not asking you anything right now.\n\n{self._registry.help_text()}")]
        return await self._answer(ctx, conversation, ctx.event.text or "")

    async def _on_content(self, ctx: Context, conversation: Conversation | None) -> list[Outgoing]:
        event, what = ctx.event, ctx.event.content_type or "that"
        if event.content_type == "photo" and event.file_id:
            taken = await self._on_photo(ctx, conversation, event.file_id)
            if taken is not None:
                return taken
        if conversation is None:
            return [Reply(f"I can't do anything with a {what} here.\n\n{self._registry.help_text()}")]
        entry = self._entry(conversation)
        lead = f"I can't use a {what} here — please type your answer as text."
        return [render.question(entry.flow, conversation.answers, self._buttons(conversation), lead)]

    # -- photos ------------------------------------------------------------------------------

    async def _on_photo(self, ctx: Context, conversation: Conversation | None, file_id: str) -> list[Outgoing] | None:
        """A photo: kept with the conversation in hand if its flow takes one, else offered to the flow that does."""
        if conversation is not None:
            entry = self._entry(conversation)
            key = entry.flow.photo_key
            if key is None:
                return None
            answers = Answers({**conversation.answers.values, key: file_id}, conversation.answers.order)
            saved = await ctx.conversations.save(conversation.advanced(entry.flow, answers, ctx.now, self._ttl))
            if answers.values.get(PHOTO_OFFERED):
                return [self._photo_offer(saved, "I'll keep this photo instead.")]
            return [render.question(entry.flow, answers, self._buttons(saved), PHOTO_KEPT)]
        caption = Command.parse(ctx.event.text or "")
        wanted = self._registry.flow_for_command(caption.name) if caption else None
        taker = next((e for e in ([wanted] if wanted else self._registry.flows) if e.flow.photo_key), None)
        key = taker.flow.photo_key if taker is not None else None
        if taker is None or key is None or self._kept_out(ctx.event, taker):
            return None
        existing = await ctx.conversations.find(taker.flow.name)  # an expired one of the flow: replaced
        if existing is not None:
            await ctx.conversations.delete(existing)
        values: dict[str, Any] = {key: file_id}
        if wanted is None:
            values[PHOTO_OFFERED] = True  # asked first: "Save to library?"
        fresh = Conversation.start(taker.flow, ctx.event.user_id, ctx.event.chat_id, ctx.now, self._ttl)
        saved = await ctx.conversations.save(fresh.advanced(taker.flow, Answers(values), ctx.now, self._ttl))
        if wanted is None:
            return [self._photo_offer(saved)]
        return [render.question(taker.flow, saved.answers, self._buttons(saved), PHOTO_KEPT)]

    def _photo_offer(self, conversation: Conversation, lead: str = "") -> Reply:
        """The question a photo sent outside any flow gets: save its machine to the library, or not."""
        data = self._buttons(conversation)
        text = f"{lead}\n\n{PHOTO_OFFER}" if lead else PHOTO_OFFER
        return Reply(text, ((Button(SAVE_BUTTON, data(render.SAVE_PHOTO)), Button(NOT_NOW_BUTTON, data(render.CANCEL))),))

    async def _photo_offer_answered(self, ctx: Context, conversation: Conversation, accepted: bool) -> list[Outgoing]:
        """Save to library: the flow's first question, the photo kept. Not now: the photo is let go."""
        if not accepted:
            await ctx.conversations.delete(conversation)
            return [Reply(PHOTO_DECLINED)]
        entry = self._entry(conversation)
        answers = conversation.answers.without(PHOTO_OFFERED)
        saved = await ctx.conversations.save(conversation.advanced(entry.flow, answers, ctx.now, self._ttl))
        return [render.question(entry.flow, answers, self._buttons(saved), PHOTO_KEPT)]

    async def _answer(self, ctx: Context, conversation: Conversation, text: str) -> list[Outgoing]:
        if conversation.answers.values.get(PHOTO_OFFERED):
            return [self._photo_offer(conversation, "Please choose first:")]
        entry = self._entry(conversation)
        flow = entry.flow
        step = flow.current_step(conversation.answers)
        assert step is not None, "a stored conversation always has an open question"
        try:
            value = self._parse(step, text)
            problem = await self._actions(ctx, entry).check(ctx.domains, ctx.event.user_id, step, value)
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
        actions = self._actions(ctx, entry)
        lead = ""
        if entry.flow.current_step(answers) is None:
            try:
                closing = await actions.complete(ctx.domains, ctx.event.user_id, answers)
            except AnswerRejected as rejected:
                answers, lead = answers.without(rejected.step_key), rejected.message
            else:
                await ctx.conversations.delete(conversation)
                ctx.writes.flow_events.append(FlowEvent(conversation.flow_name, "completed"))
                return [closing]
        await actions.moved(ctx.domains, ctx.event.user_id, answers)
        saved = await ctx.conversations.save(conversation.advanced(entry.flow, answers, ctx.now, self._ttl))
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
        linked = self._registry.deep_linked(command.argument) if name == "start" else None
        if linked is not None:
            return await self._deep_link(ctx, conversation, linked)
        if name in ("start", "help"):
            greeting = f"Hello! {self._registry.about}\n\n" if name == "start" else ""
            return self._then_remind([Reply(f"{greeting}{self._registry.help_text()}")], conversation)
        entry = self._registry.command(name)
        if entry is not None:
            return await self._run_command(ctx, conversation, entry, command.argument)
        unknown = f"Sorry, /{name} is not a command I know."
        if conversation is None:
            return [Reply(f"{unknown}\n\n{self._registry.help_text()}")]
        flow = self._entry(conversation).flow
        return [render.question(flow, conversation.answers, self._buttons(conversation), unknown)]

    async def _run_command(
        self, ctx: Context, conversation: Conversation | None, entry: CommandEntry, argument: str
    ) -> list[Outgoing]:
        replies = await entry.handler.run(ctx.domains, ctx.event.user_id, argument)
        return self._then_remind(list(replies), conversation)

    async def _deep_link(
        self, ctx: Context, conversation: Conversation | None, target: FlowEntry | CommandEntry
    ) -> list[Outgoing]:
        """``/start <parameter>`` from a private-chat link: carry on with the flow or command it names."""
        if isinstance(target, FlowEntry):
            return await self._start_or_resume(ctx, target)
        return await self._run_command(ctx, conversation, target, "")

    def _then_remind(self, replies: list[Outgoing], conversation: Conversation | None) -> list[Outgoing]:
        if conversation is None:
            return replies
        flow = self._entry(conversation).flow
        lead = f"You are still {flow.title}; here is where you were:"
        return [*replies, render.question(flow, conversation.answers, self._buttons(conversation), lead)]

    async def _start_or_resume(self, ctx: Context, entry: FlowEntry, create: bool = True) -> list[Outgoing]:
        flow, user_id = entry.flow, ctx.event.user_id
        existing = await ctx.conversations.find(flow.name)
        if existing is not None and not existing.is_expired(ctx.now):
            await self._begin(ctx, entry, f"command:{flow.command}")
            saved = await ctx.conversations.save(existing.advanced(flow, existing.answers, ctx.now, self._ttl))
            return [render.welcome_back(flow, saved.answers, self._buttons(saved))]
        if existing is not None:
            await ctx.conversations.delete(existing)
            ctx.writes.flow_events.append(FlowEvent(existing.flow_name, "expired"))
        answers = await self._actions(ctx, entry).opened(ctx.domains, user_id, create)
        if answers is None:
            return [Reply(f"You have nothing in progress here. Send /{flow.command} to start.")]
        fresh = Conversation.start(flow, user_id, ctx.event.chat_id, ctx.now, self._ttl)
        if flow.current_step(answers) is None:
            return await self._advance(ctx, await ctx.conversations.save(fresh), answers)
        saved = await ctx.conversations.save(fresh.advanced(flow, answers, ctx.now, self._ttl))
        if answers.values:
            return [render.welcome_back(flow, saved.answers, self._buttons(saved))]
        return [render.question(flow, saved.answers, self._buttons(saved))]

    async def _cancel(self, ctx: Context, entry: FlowEntry, conversation: Conversation | None) -> list[Outgoing]:
        if conversation is not None and conversation.id is not None:
            await ctx.conversations.delete(conversation)
            ctx.writes.flow_events.append(FlowEvent(conversation.flow_name, "cancelled"))
        outcome = await self._actions(ctx, entry).cancelled(ctx.domains, ctx.event.user_id)
        if conversation is None and outcome is None:
            return [Reply(f"You have nothing in progress to cancel. Send /{entry.flow.command} to start.")]
        return [Reply(f"Cancelled — you are no longer {entry.flow.title}. {outcome or ''}".strip())]

    async def _flow_alias(self, ctx: Context, entry: FlowEntry, kind: str) -> list[Outgoing]:
        """The flow's own resume, cancel and status commands."""
        if kind == "resume":
            return await self._start_or_resume(ctx, entry, create=False)
        conversation = await ctx.conversations.find(entry.flow.name)
        if conversation is not None and conversation.is_expired(ctx.now):
            conversation = None
        if kind == "cancel":
            return await self._cancel(ctx, entry, conversation)
        actions, user_id = self._actions(ctx, entry), ctx.event.user_id
        answers = conversation.answers if conversation else await actions.opened(ctx.domains, user_id, False)
        if answers is None:
            return [Reply(f"You have nothing in progress here. Send /{entry.flow.command} to start.")]
        return [Reply(await actions.status(ctx.domains, user_id, answers))]

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
        await self._actions(ctx, self._entry(conversation)).moved(ctx.domains, ctx.event.user_id, earlier)
        saved = await ctx.conversations.save(conversation.advanced(flow, earlier, ctx.now, self._ttl))
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
            entry, rest = routed
            pressed = await entry.handler.press(ctx.domains, ctx.event.user_id, rest)
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
        if conversation.answers.values.get(PHOTO_OFFERED) and code in (render.SAVE_PHOTO, render.CANCEL):
            return await self._photo_offer_answered(ctx, conversation, accepted=code == render.SAVE_PHOTO)
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
