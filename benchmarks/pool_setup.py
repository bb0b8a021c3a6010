"""The pools benchmarks/pool.py (and batch.py) run: which keys, which limits the fake enforces,
which the routes.toml declares, and the targets a paced row must meet.

The default pool is issue 3's: three groq keys at 5 requests per 2 s, two fallbacks at 2 per 2 s,
with the limits declared in routes.toml. The dialect pools (issue 11) keep that shape but declare
nothing: llmroute must learn each limit from the headers of the fake's dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from tests.fakeprovider import FakeServer, RefillBucket, Reply, SlidingWindow, prompt_tokens

MODEL = "m"
TASK = "pool"
PROMPT = "ping"


@dataclass(frozen=True)
class Targets:
    """What a paced row must meet."""

    wall: float  # wall time at most the theoretical line * (1 + wall)
    max_429: float  # share of upstream calls that may be 429s
    below: bool  # the share must stay strictly below max_429 (issue 3), else at most it
    p95: float | None = None  # open loop: p95 latency under this many seconds

    def allows(self, share: float) -> bool:
        return share < self.max_429 if self.below else share <= self.max_429

    def __str__(self) -> str:
        shares = (
            "no 429s"
            if self.max_429 == 0
            else f"429s {'<' if self.below else '<='} {self.max_429:.0%} of calls"
        )
        p95 = "" if self.p95 is None else f"; open loop p95 < {self.p95:g} s"
        return f"wall <= theory * {1 + self.wall:g}; {shares}; every request answered{p95}"


CONFIGURED = Targets(wall=0.10, max_429=0.02, below=True, p95=1.0)  # issue 3
LEARNED = Targets(wall=0.15, max_429=0.03, below=False)  # issue 11, limits only in the fake
SHARED = Targets(wall=0.10, max_429=0.0, below=False)  # issue 11, models sharing a key's window


@dataclass(frozen=True)
class KeyLimit:
    """One key's binding limit at the fake: `n` units per `w` s, `cost` units a request."""

    provider: str
    n: int
    w: float
    refill: bool = False  # a refill bucket (OpenAI, Groq) rather than a sliding window
    cost: int = 1

    @property
    def burst(self) -> int:
        """Requests a fresh window admits at once."""
        return self.n // self.cost

    @property
    def rate(self) -> float:
        """Requests a second in the long run."""
        return (self.n / self.cost if self.refill else self.burst) / self.w

    def window(self) -> SlidingWindow | RefillBucket:
        """A fresh copy of the fake's own window, for replaying a schedule on it."""
        return (RefillBucket if self.refill else SlidingWindow)(self.n, self.w)

    def instant(self, j: int) -> float:
        """When the key's j-th request (from 0) can go at the earliest, all asked at t = 0."""
        if self.refill:  # full at 0, then refilled at n/w units a second
            return max(0.0, ((j + 1) * self.cost - self.n) * self.w / self.n)
        return (j // self.burst) * self.w


@dataclass(frozen=True)
class Setup:
    """A pool (the main provider's keys, then one-key fallbacks fb1, fb2, ...) and its runs."""

    requests: int = 120
    concurrency: int = 8
    rate: float = 10.0  # open-loop arrivals per second
    latency: float = 0.2
    dialect: str = "groq"  # the main provider's, which is also its name
    main_keys: int = 3
    main_limit: tuple[int, float] = (5, 2.0)
    fallbacks: int = 2
    fallback_limit: tuple[int, float] = (2, 2.0)
    fallback_dialect: str = "openai"
    refill: bool = False  # the fake's limits refill continuously instead of sliding
    metric: Literal["requests", "tokens"] = "requests"  # what the fake's limits count
    max_tokens: int | None = None  # sent with every request; a token window charges it
    models: tuple[str, ...] = (MODEL,)  # the main provider's route entries, sharing its keys
    declared: bool = True  # routes.toml declares the limits (when pacing); else learned
    limits_per: str | None = None  # routes.toml's limits_per for every provider
    deadline: float = 60.0
    targets: Targets = CONFIGURED

    # The names benchmarks/batch.py reads.
    @property
    def groq_keys(self) -> int:
        return self.main_keys

    @property
    def groq_limit(self) -> tuple[int, float]:
        return self.main_limit

    def cost(self) -> int:
        """Units one request spends: 1 request, or its tokens as the fake charges them."""
        if self.metric == "requests":
            return 1
        body = {"messages": [{"role": "user", "content": PROMPT}]}
        return prompt_tokens(body) + (self.max_tokens or 0)

    def params(self) -> dict[str, Any]:
        return {} if self.max_tokens is None else {"max_tokens": self.max_tokens}

    def key_limits(self) -> list[KeyLimit]:
        """Every key of the pool, in route order."""
        cost = self.cost()
        keys = [KeyLimit(self.dialect, *self.main_limit, self.refill, cost)] * self.main_keys
        return keys + [
            KeyLimit(f"fb{i}", *self.fallback_limit, self.refill, cost)
            for i in range(1, self.fallbacks + 1)
        ]

    def capacity(self) -> float:
        return sum(k.rate for k in self.key_limits())

    def describe(self) -> str:
        fbs = ", ".join(f"fb{i}" for i in range(1, self.fallbacks + 1)) or "none"
        (n, w), (fn, fw) = self.main_limit, self.fallback_limit
        unit = "" if self.metric == "requests" else " tokens"
        clauses = [
            f"{self.dialect} x{self.main_keys} keys at {n}{unit}/{w:g}s each, fallbacks {fbs} "
            f"(1 key each) at {fn}{unit}/{fw:g}s, {self.latency:g} s per ok call, "
            "429s answered at once"
        ]
        if self.fallback_dialect == self.dialect:
            clauses.append(f"{self.dialect} dialect for all")
        if self.metric == "tokens":
            clauses.append(f"{self.cost()} tokens a request (max_tokens {self.max_tokens})")
        if len(self.models) > 1:
            clauses.append(f"models {', '.join(self.models)} share each key's window")
        if self.refill:
            clauses.append("refill buckets")
        if not self.declared:
            clauses.append("routes.toml declares no limits")
        elif self.limits_per:
            clauses.append(f"routes.toml declares them, limits_per = {self.limits_per!r}")
        return "; ".join(clauses)


def dialect_pools(requests: int, fallbacks: int) -> dict[str, Setup]:
    """Issue 11's rows: the limits only in the fake, one pool per header dialect, and
    OpenRouter's three models sharing one key's window, configured as the registry writes it."""
    base = Setup(requests=requests, fallbacks=fallbacks, declared=False, targets=LEARNED)

    def pool(dialect: str, **changes: Any) -> Setup:
        return replace(base, dialect=dialect, fallback_dialect=dialect, **changes)

    return {
        "openai-refill": pool("openai", refill=True),
        "sliding": pool("openai"),
        # The token window binds (85 = 5 requests of 17 tokens); -requests is Groq's day.
        "groq": pool(
            "groq",
            refill=True,
            metric="tokens",
            main_limit=(85, 2.0),
            fallback_limit=(34, 2.0),
            max_tokens=16,
        ),
        # The header names the minute, so the window is one; sized so the run crosses it.
        "cerebras": pool(
            "cerebras",
            main_limit=(requests // 4, 60.0),
            fallback_limit=(requests // 12, 60.0),
            deadline=150.0,
        ),
        "openrouter": pool("openrouter"),
        "openrouter-shared": pool(
            "openrouter",
            main_keys=1,
            models=("m1", "m2", "m3"),
            declared=True,
            limits_per="account",
            targets=SHARED,
        ),
    }


DIALECT_POOLS = tuple(dialect_pools(120, 2))


def pool_data(
    setup: Setup, server: FakeServer, *, pacing: bool, state: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Fake providers with the real limits, and the routes.toml data for them (declaring the
    same limits when pacing and the setup declares them), with the key variables it names."""
    providers: dict[str, Any] = {}
    env: dict[str, str] = {}
    for index, k in enumerate(setup.key_limits()):
        dialect = setup.dialect if index < setup.main_keys else setup.fallback_dialect
        provider = server.provider(k.provider, dialect=dialect)
        secret = f"sk-bench-{k.provider}-{index:02d}-0000000000000000"
        key = provider.key(secret)
        key.limit(**{setup.metric: k.n}, per=k.w, refill=k.refill)
        key.default = Reply.ok("pong", latency=setup.latency)
        var = f"BENCH_{k.provider.upper()}_{index}"
        env[var] = secret
        table = providers.setdefault(k.provider, {"base_url": provider.base_url, "keys": []})
        table["keys"].append(var)
        if pacing and setup.declared:
            table["limits"] = {setup.metric: f"{k.n}/{k.w:g}s"}
            if setup.limits_per is not None:
                table["limits_per"] = setup.limits_per
    settings: dict[str, Any] = {"default_task": TASK, "deadline": setup.deadline, "timeout": 10,
                                "pacing": pacing}  # fmt: skip
    if state is not None:
        settings["state"] = state
    route = [f"{setup.dialect}:{m}" for m in setup.models]
    route += [f"{name}:{MODEL}" for name in providers if name != setup.dialect]
    data = {"settings": settings, "providers": providers, "tasks": {TASK: {"route": route}}}
    return data, env
