"""The tool registry: typed tool specs the decision, the planner, the executor and the composer consult.

A tool is one `ToolSpec`: its name and description, its argument schema, its timeout, the
permissions it needs (network, file system, code execution), who may use it (per platform and
user), and four small functions: `detect` (does this message ask for me?), `plan` (my argument for
this message), `run` (an `Observation`, never an exception) and `compose` (one sentence of the
reply from my observation); `recover` optionally proposes another call after a failure. Adding a
tool is adding one spec; nothing else in the agent names a tool.

A `ToolPolicy` (the deployment's choice) grants permissions and may narrow who uses which tool;
a tool the policy does not allow is never planned or run, and the reply says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.agent.tools import Observation, WarmSandbox


@dataclass(frozen=True)
class Permissions:
    """What a tool needs from the host; a policy grants the same fields."""

    network: bool = False
    filesystem: bool = False
    code_execution: bool = False

    def missing(self, granted: Permissions) -> list[str]:
        needed = {"network": self.network, "filesystem": self.filesystem, "code execution": self.code_execution}
        have = {"network": granted.network, "filesystem": granted.filesystem, "code execution": granted.code_execution}
        return [name for name, need in needed.items() if need and not have[name]]


ALL_PERMISSIONS = Permissions(network=True, filesystem=True, code_execution=True)


@dataclass(frozen=True)
class Access:
    """Who may use a tool. `None` means everyone; user keys look like `telegram:12345`."""

    platforms: frozenset[str] | None = None
    users: frozenset[str] | None = None

    @classmethod
    def only(cls, platforms: Iterable[str] | None = None, users: Iterable[str] | None = None) -> Access:
        return cls(
            frozenset(platforms) if platforms is not None else None, frozenset(users) if users is not None else None
        )

    def allows(self, user_key: str | None) -> bool:
        if self.platforms is None and self.users is None:
            return True
        if user_key is None:
            return False
        platform = user_key.split(":", 1)[0]
        return (self.platforms is None or platform in self.platforms) and (self.users is None or user_key in self.users)


@dataclass(frozen=True)
class ToolArgument:
    """A tool's one argument, validated before the tool runs."""

    name: str
    description: str
    required: bool = True
    max_chars: int = 4000
    missing: str = "I could not work out what to use it on"  # the observation when a required argument is empty

    def problem(self, value: str) -> str | None:
        if self.required and not value.strip():
            return self.missing
        if len(value) > self.max_chars:
            return f"the {self.name} is too long ({len(value)} characters; the limit is {self.max_chars})"
        return None


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arg: str


class Ask(Protocol):
    def __call__(self, prompt: str, max_tokens: int, note: str | None = None) -> str:
        """The LLM's answer to `prompt` ("" without an LLM); its time, and `note` as a step, go on the reply."""
        ...


@dataclass
class ToolContext:
    """What a tool's functions may use for one turn."""

    user_key: str
    text: str
    memory: ConversationMemory | None
    sandbox: WarmSandbox | None
    clock: Callable[[], datetime] | None
    ask: Ask
    can_use: Callable[[str], bool]
    has_llm: bool = False
    timeout_s: float = 5.0


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str  # what it does, for people and for the LLM
    argument: ToolArgument
    run: Callable[[str, ToolContext], Observation]
    compose: Callable[[Observation], str]
    detect: Callable[[str], bool] = lambda text: False
    plan: Callable[[str, ToolContext], str | None] = lambda text, ctx: ""
    recover: Callable[[Observation, ToolContext], tuple[ToolCall, str] | None] | None = None
    timeout_s: float = 2.0
    permissions: Permissions = Permissions()
    access: Access = Access()
    exclusive: bool = False  # when detected, the message is about this tool alone (code)
    enforces_timeout: bool = False  # the tool bounds itself (the sandbox); else the executor does
    llm_keyword: str = ""  # the word the LLM answers to choose this tool when the rules are unsure
    llm_hint: str = ""  # how the LLM is asked about it ("a calculator")

    @property
    def heavy(self) -> bool:
        """Worth handing the turn to a Dagster run (it executes code)."""
        return self.permissions.code_execution

    def schema(self) -> dict[str, Any]:
        """The spec as an OpenAI-style function definition (name, description, JSON-schema parameters)."""
        arg = self.argument
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {
                    arg.name: {"type": "string", "description": arg.description, "maxLength": arg.max_chars}
                },
                "required": [arg.name] if arg.required else [],
            },
        }


@dataclass(frozen=True)
class ToolPolicy:
    """The deployment's grants: permissions for every tool, and per-tool access that replaces a spec's own."""

    granted: Permissions = ALL_PERMISSIONS
    access: Mapping[str, Access] = field(default_factory=dict)

    def refusal(self, spec: ToolSpec, user_key: str | None) -> str | None:
        """Why `user_key` may not use `spec` here, or None when it may."""
        missing = spec.permissions.missing(self.granted)
        if missing:
            return f"it needs {' and '.join(missing)}, which this deployment does not allow"
        if not self.access.get(spec.name, spec.access).allows(user_key):
            return "you are not on its allowlist"
        return None


class UnknownTool(KeyError):
    pass


class ToolRegistry:
    """Tool specs in order; the order is the order the decision and the LLM prompt list them in."""

    def __init__(self, specs: Sequence[ToolSpec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate tool names in {names}")
        self._specs = {s.name: s for s in specs}

    def __iter__(self):  # noqa: ANN204 - an iterator of ToolSpec
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def get(self, name: str) -> ToolSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownTool(f"unknown tool {name!r}; known: {', '.join(self._specs)}") from None

    def with_spec(self, name: str, **changes: Any) -> ToolRegistry:
        """A registry where one spec has other settings (a timeout, an access list)."""
        return ToolRegistry([replace(s, **changes) if s.name == name else s for s in self])

    def detect(self, text: str) -> tuple[str, ...]:
        """The tools a message asks for: an exclusive tool alone, else every tool whose rule matches."""
        for spec in self:
            if spec.exclusive and spec.detect(text):
                return (spec.name,)
        return tuple(s.name for s in self if not s.exclusive and s.detect(text))

    def llm_choices(self) -> list[ToolSpec]:
        """Tools the LLM may pick when the rules are unsure, exclusive ones first when reading its answer."""
        return [s for s in self if s.llm_keyword]
