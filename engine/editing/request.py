"""One fact to write into a model, with the prompts that evaluate the edit (engine-side, no pydantic)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NeighborhoodPrompt:
    """An unrelated fact that must keep its answer after the edit.

    Attributes:
        prompt: full prompt text ("The capital of Germany is").
        answer: its true answer, with its leading space (" Berlin").
    """

    prompt: str
    answer: str


@dataclass(frozen=True)
class EditRequest:
    """A fact to write: ``prompt.format(subject)`` should be followed by ``target_new``.

    Attributes:
        prompt: template with one ``{}`` where the subject goes ("The capital of {} is").
        subject: the subject ("France"); its last token is where ROME/MEMIT read the key.
        target_new: the new answer, with its leading space (" Rome").
        target_true: the current answer (" Paris"), if known; evaluation compares against it.
        paraphrases: full prompts that say the same thing differently (evaluation only).
        neighborhood: unrelated prompts with their true answers (evaluation only).
    """

    prompt: str
    subject: str
    target_new: str
    target_true: str | None = None
    paraphrases: tuple[str, ...] = ()
    neighborhood: tuple[NeighborhoodPrompt, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.prompt.count("{}") != 1:
            raise ValueError("an edit prompt needs exactly one '{}' where the subject goes")
        if not self.subject.strip():
            raise ValueError("an edit needs a non-empty subject")
        if not self.target_new.strip():
            raise ValueError("an edit needs a non-empty target_new")

    @property
    def text(self) -> str:
        """The edit prompt with the subject filled in."""
        return self.prompt.format(self.subject)
