"""The state of a conversation: its messages, its system prompt and where it is routed.

Pure: no I/O. Each turn sends the whole conversation, so any candidate can take the next turn
and a conversation survives fallbacks between providers. Only answered turns are kept: a reply
that failed, broke off or was cancelled leaves its prompt as `unanswered`, for `/retry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]


@dataclass
class Session:
    task: str | None = None  # None: the config's default task
    model: str | None = None  # a pinned `provider:model`, which wins over the task
    system: str | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)  # (prompt, reply)
    unanswered: str | None = None  # the last prompt sent that got no (whole) reply

    @property
    def target(self) -> str | None:
        """What `router.stream()` routes by: the pinned model, else the task."""
        return self.model or self.task

    def ask(self, prompt: str) -> list[Message]:
        """Start a turn: the messages to send (the whole conversation, then `prompt`)."""
        self.unanswered = prompt
        return [*self.messages(), {"role": "user", "content": prompt}]

    def answered(self, reply: str) -> None:
        """The turn started by `ask` got its whole reply: it joins the conversation."""
        if self.unanswered is None:
            raise ValueError("answered() without a turn in flight")
        self.turns.append((self.unanswered, reply))
        self.unanswered = None

    def retry(self) -> str | None:
        """The prompt to ask again: the unanswered one, else the last turn's (which is taken
        back, reply and all). None when there is nothing to retry."""
        if self.unanswered is not None:
            return self.unanswered
        if self.turns:
            return self.turns.pop()[0]
        return None

    def undo(self) -> tuple[str, str] | None:
        """Take back the last turn (prompt and reply); None when the conversation is empty."""
        self.unanswered = None
        return self.turns.pop() if self.turns else None

    def clear(self) -> None:
        """Forget the conversation; the system prompt and the route stay."""
        self.turns.clear()
        self.unanswered = None

    def messages(self) -> list[Message]:
        """The conversation so far, system prompt first, in the chat-completions format."""
        out: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        for prompt, reply in self.turns:
            out += [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
        return out

    def to_dict(self) -> dict[str, Any]:
        """What `/save` writes: the route, and the messages as they would be sent."""
        return {"task": self.task, "model": self.model, "messages": self.messages()}
