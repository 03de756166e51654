"""A user's records in the engine's own stores, gathered behind the one port the user's data commands use."""

from __future__ import annotations

from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.ports import ConversationStore, Inbox, Outbox


class StoredUserRecords:
    """:class:`~durabot.engine.ports.UserRecords` over the conversation store, inbox and outbox of one transaction."""

    def __init__(self, conversations: ConversationStore, inbox: Inbox, outbox: Outbox) -> None:
        self._conversations = conversations
        self._inbox = inbox
        self._outbox = outbox

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        return await self._conversations.of_user(user_id)

    async def forget_user(self, user_id: int) -> int:
        removed = await self._conversations.forget_user(user_id)
        await self._inbox.forget_user(user_id)
        await self._outbox.forget_chat(user_id)  # a private chat's id is its user's id
        return removed
