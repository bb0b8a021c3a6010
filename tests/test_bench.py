"""`llmroute bench`: pure figures, ranking and spend plan; then end to end on the fake provider."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from llmroute.attempt import Candidate
from llmroute.bench.outcome import CSV_COLUMNS, Outcome
from llmroute.bench.plan import Plan, Spend, TargetSpend, plan_spend
from llmroute.bench.ranking import TTFT, rank, recommend
from llmroute.bench.stats import NOT_SENT, Sample, Spread, Summary, percentile, summarize
from llmroute.bench.target import Target, select
from llmroute.budget import UsageEntry
from llmroute.cli.app import app
from llmroute.cli.bench_view import bar, print_outcome, progress
from llmroute.config import parse_config
from llmroute.errors import ConfigError, UsageError
from llmroute.pacing import budget_scope
from llmroute.pools import build_pools
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world

# -- figures: pure ---------------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks_like_statistics() -> None:
    values = [0.4, 0.1, 0.3, 0.2]
    assert percentile(values, 50) == pytest.approx(0.25)
    assert percentile(values, 95) == pytest.approx(0.385)
    assert percentile(values, 0) == 0.1 and percentile(values, 100) == 0.4
    data = [float(v) for v in range(1, 22)]
    inclusive = statistics.quantiles(data, n=20, method="inclusive")
    assert percentile(data, 95) == pytest.approx(inclusive[-1])
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert Spread.of([]) == Spread(None, None, None)


def test_summary_counts_failures_by_kind_429s_tokens_per_second_and_keys() -> None:
    samples = [
        Sample("ok", 0.2, 0.05, 20, "groq#1", rate_limited=1),
        Sample("ok", 0.4, 0.10, 20, "groq#2"),
        Sample("ok", 0.6, 0.15, None, "groq#1", waited_s=1.5),
        Sample("rate_limited", rate_limited=2, reason="groq#3: Rate limit reached"),
        Sample("timeout", reason="groq#1: no first token within 20.0s"),
        Sample("rate_limited", rate_limited=1),
        Sample(NOT_SENT, reason="groq#2: disabled after auth 401"),
    ]
    s = summarize(Target("groq:small"), samples)
    assert (s.requests, s.ok, s.failed, s.rate_limited) == (7, 3, 4, 4)
    assert s.failures == {"rate_limited": 2, NOT_SENT: 1, "timeout": 1}
    assert list(s.failures) == ["rate_limited", NOT_SENT, "timeout"]  # most frequent first
    assert s.success_rate == pytest.approx(3 / 7)
    assert s.latency == Spread(pytest.approx(0.4), pytest.approx(0.58), 0.6)
    assert s.ttft.p50 == pytest.approx(0.10)
    assert s.tokens_per_s == pytest.approx(40 / 0.6)  # requests without a count do not dilute
    assert s.waited_s == 1.5
    assert {alias: k.ok for alias, k in s.keys.items()} == {"groq#1": 2, "groq#2": 1}
    assert s.keys["groq#1"].latency.p50 == pytest.approx(0.4)
    assert s.examples["rate_limited"] == "groq#3: Rate limit reached"


def test_tokens_per_second_is_none_without_counts() -> None:
    assert summarize(Target("a:b"), [Sample("ok", 0.2, 0.1)]).tokens_per_s is None


# -- ranking and the suggested route order -----------------------------------------------------


def summary(
    name: str, p50: float, *, ok: int = 10, requests: int = 10, ttft: float | None = None,
    route: bool = False, p95: float | None = None,
) -> Summary:  # fmt: skip
    return Summary(
        Target(name, route=route), requests, ok,
        failures={"timeout": requests - ok} if ok < requests else {},
        latency=Spread(p50, p95 or p50 * 1.2, (p95 or p50 * 1.2) + 0.01),
        ttft=Spread(ttft if ttft is not None else p50 / 2, None, None),
        tokens_per_s=80.0,
    )  # fmt: skip


def test_ranking_by_median_among_candidates_that_mostly_answer() -> None:
    slow, fast = summary("groq:small", 0.5), summary("backup:big", 0.2)
    flaky = summary("cerebras:x", 0.1, ok=8)  # 80% < 90%: not ranked, however fast
    whole = summary("fast", 0.3, route=True)
    ranked = rank([whole, slow, flaky, fast])
    assert [(r.summary.target.label, r.rank) for r in ranked] == [
        ("backup:big", 1), ("groq:small", 2), ("cerebras:x", None), ("route fast", None),
    ]  # fmt: skip
    assert [r.rank for r in rank([slow, flaky, fast], min_success=0.8)] == [1, 2, 3]


def test_ranking_by_time_to_first_token_and_ties_by_p95() -> None:
    a = summary("a:m", 0.5, ttft=0.05)
    b = summary("b:m", 0.2, ttft=0.15)
    assert [r.summary.target.name for r in rank([b, a], TTFT)] == ["a:m", "b:m"]
    steady, jumpy = summary("s:m", 0.3, p95=0.35), summary("j:m", 0.3, p95=0.9)
    assert [r.summary.target.name for r in rank([jumpy, steady])] == ["s:m", "j:m"]


def test_recommendation_reorders_the_tasks_own_entries() -> None:
    ranked = rank([summary("groq:small", 0.5), summary("backup:big", 0.2),
                   summary("dead:m", 0.1, ok=0)])  # fmt: skip
    rec = recommend("fast", ["dead:m", "groq:small", "backup:big"], ranked)
    assert rec.suggested == ("backup:big", "groq:small", "dead:m")
    assert rec.unranked == ("dead:m",) and rec.changed
    same = recommend("other", ["backup:big", "groq:small"], ranked)
    assert not same.changed
    assert same.to_dict() == {"task": "other", "configured": ["backup:big", "groq:small"],
                              "suggested": ["backup:big", "groq:small"], "unranked": [],
                              "changed": False}  # fmt: skip


# -- targets and the spend plan: pure --------------------------------------------------------

CONFIG = {
    "settings": {"default_task": "fast", "state": "memory"},
    "providers": {
        "groq": {"base_url": "http://127.0.0.1:9/groq/v1", "keys": ["G1", "G2", "G3"],
                 "models": {"small": {"requests": ["30/minute", "1000/day"]}}},
        "team": {"base_url": "http://127.0.0.1:9/team/v1", "keys": ["T1", "T2"],
                 "limit_scope": "account", "limits": {"requests": "500/day"}},
        "backup": {"base_url": "http://127.0.0.1:9/backup/v1", "keys": ["B1"]},
        "nokey": {"base_url": "http://127.0.0.1:9/nokey/v1", "keys": ["MISSING"]},
    },
    "tasks": {
        "fast": {"route": ["groq:small", "team:m"]},
        "other": {"route": ["nokey:x", "groq:small"]},
        "fallback": {"route": ["backup:big"]},
    },
}  # fmt: skip
ENV = {"G1": "gsk_one_1111111111", "G2": "gsk_two_2222222222", "G3": "gsk_three_33333333",
       "T1": "team_one_44444444", "T2": "team_two_55555555", "B1": "backup_66666666"}  # fmt: skip


def configured() -> tuple[Any, Any]:
    config = parse_config(CONFIG)
    return config, build_pools(config, ENV)


def test_targets_of_a_task_models_all_and_route() -> None:
    config, pools = configured()
    default = select(config, pools)
    assert [t.label for t in default.targets] == ["groq:small", "team:m", "backup:big"]
    assert default.tasks == ("fast",)
    chosen = select(config, pools, task="other", models=["backup:big", "groq:large"],
                    route="fast")  # fmt: skip
    assert [t.label for t in chosen.targets] == [
        "groq:small", "backup:big", "groq:large", "route fast",
    ]  # fmt: skip
    assert chosen.skipped == (("nokey:x", "set MISSING (nokey)"),)
    every = select(config, pools, all_tasks=True)
    assert every.tasks == ("fast", "other", "fallback")
    assert len(every.targets) == 3  # without repeats; nokey:x skipped
    assert [t.label for t in select(config, pools, route="other").targets] == ["route other"]


def test_target_errors_are_sentences() -> None:
    config, pools = configured()
    with pytest.raises(ConfigError, match="no provider 'nope'"):
        select(config, pools, models=["nope:m"])
    with pytest.raises(ConfigError, match="no task 'nope'"):
        select(config, pools, task="nope")
    with pytest.raises(UsageError, match=r"nothing to measure.*set MISSING"):
        select(config, pools, models=["nokey:x"])


def test_spend_plan_per_key_account_and_route() -> None:
    config, pools = configured()
    targets = [Target("groq:small"), Target("team:m"), Target("backup:big"),
               Target("fast", route=True)]  # fmt: skip
    plan = plan_spend(config, pools, targets, 10, {}, now=1000.0)
    assert [(t.target.label, t.keys, t.fallbacks) for t in plan.targets] == [
        ("groq:small", (("groq#1", 4), ("groq#2", 4), ("groq#3", 4)), False),
        ("team:m", (("team#1", 5), ("team#2", 5)), False),
        ("backup:big", (("backup#1", 10),), False),
        ("route fast", (("groq#1", 4), ("groq#2", 4), ("groq#3", 4)), True),
    ]  # fmt: skip
    spends = {(s.budget, s.model): s for s in plan.spends}
    # The route's first entry is groq:small again: its requests add up per key.
    assert spends[("groq#1", "small")] == Spend("groq", "small", "groq#1", 8, 1000, 1000, "day")
    assert spends[("team (account)", "m")].requests == 10  # the keys share one budget
    assert spends[("team (account)", "m")].daily == 500
    assert spends[("backup#1", "big")].daily is None
    assert plan.over(0.005) == [s for s in plan.spends if s.daily]
    assert plan.over(0.1) == []


def test_spend_plan_counts_what_is_left_today() -> None:
    config, pools = configured()
    groq1 = Candidate("groq", pools["groq"].keys[0], "small")
    scope = budget_scope(groq1, config.providers["groq"])
    used = [UsageEntry(f"e{i}", 1000.0 - 3600, 1, 50) for i in range(995)]
    old = [UsageEntry("old", 1000.0 - 90000, 1, 50)]  # more than a day ago: no longer counts
    plan = plan_spend(config, pools, [Target("groq:small")], 10, {scope: used + old}, 1000.0)
    first = plan.spends[0]
    assert (first.budget, first.left, first.requests) == ("groq#1", 5, 4)
    assert [s.budget for s in plan.over(0.5)] == ["groq#1"]
    assert first.phrase() == "4 requests of groq#1's 1000/day (5 left) on small"
    assert Spend("g", "m", "g#1", 4, 20, 20, "day").phrase() == "4 requests of g#1's 20/day on m"


# -- output shapes: pure -------------------------------------------------------------------------


def outcome(*summaries: Summary) -> Outcome:
    ranked = rank(list(summaries))
    rec = recommend("fast", ["groq:small", "backup:big"], ranked)
    plan = Plan((TargetSpend(Target("groq:small"), (("groq#1", 10),), False),),
                (Spend("groq", "small", "groq#1", 10, 1000, 990, "day"),))  # fmt: skip
    return Outcome(
        requests=10, concurrency=2, prompt_chars=69, rank_by="latency", min_success=0.9,
        ranked=ranked, recommendations=[rec], plan=plan, skipped=(("dead:m", "set D"),),
        elapsed_s=3.2,
    )  # fmt: skip


FIXED = (
    Summary(Target("groq:small"), 10, 9, {"rate_limited": 1}, 2, Spread(0.412, 0.93, 1.25),
            Spread(0.101, 0.2, 0.3), 61.7, 0.0, examples={"rate_limited": "groq#1: slow down"}),
    Summary(Target("backup:big"), 10, 10, {}, 0, Spread(0.25, 0.3, 0.31),
            Spread(0.08, 0.09, 0.1), 120.2),
    Summary(Target("fast", route=True), 10, 10, {}, 0, Spread(0.3, 0.5, 0.6),
            Spread(0.1, 0.12, 0.13), 100.0),
)  # fmt: skip


def test_json_shape() -> None:
    data = json.loads(json.dumps(outcome(*FIXED).to_dict()))
    assert set(data) == {"requests_per_target", "concurrency", "prompt_chars", "rank_by",
                         "min_success", "elapsed_s", "targets", "recommendations", "spend",
                         "skipped"}  # fmt: skip
    first = data["targets"][0]
    assert first == {
        "rank": 1, "target": "backup:big", "mode": "candidate", "requests": 10, "ok": 10,
        "failed": 0, "success_rate": 1.0, "failures": {}, "rate_limited_429": 0,
        "latency_s": {"p50": 0.25, "p95": 0.3, "max": 0.31},
        "ttft_s": {"p50": 0.08, "p95": 0.09, "max": 0.1}, "output_tokens_per_s": 120.2,
        "waited_s": 0.0, "keys": {}, "failure_examples": {},
    }  # fmt: skip
    assert [(t["target"], t["rank"], t["mode"]) for t in data["targets"]] == [
        ("backup:big", 1, "candidate"), ("groq:small", 2, "candidate"), ("fast", None, "route"),
    ]  # fmt: skip
    assert data["recommendations"][0]["suggested"] == ["backup:big", "groq:small"]
    assert data["spend"][0] == {
        "provider": "groq",
        "model": "small",
        "budget": "groq#1",
        "requests": 10,
        "daily": 1000,
        "left": 990,
        "window": "day",
    }
    assert data["skipped"] == [{"target": "dead:m", "reason": "set D"}]


def test_csv_shape() -> None:
    rows = list(csv.reader(io.StringIO(outcome(*FIXED).to_csv())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 4
    by_target = {r[1]: dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    groq = by_target["groq:small"]
    assert (groq["rank"], groq["ok"], groq["failed"], groq["failures"]) == (
        "2", "9", "1", "rate_limited=1")  # fmt: skip
    assert by_target["fast"]["rank"] == ""  # a route is not ranked
    assert (groq["rate_limited_429"], groq["latency_p50_s"], groq["ttft_p95_s"]) == (
        "2", "0.412", "0.2")  # fmt: skip
    assert by_target["fast"]["mode"] == "route"


# -- the human output, as a screenshot -----------------------------------------------------------

SCREEN = """\
10 requests per target, 2 at a time; ranked by median latency

                       latency                 ttft
 #  target         ok      p50    p95    max    p50    p95  tok/s  429s
 ──────────────────────────────────────────────────────────────────────
 1  backup:big  10/10    250ms  300ms  310ms   80ms   90ms    120     0
 2  groq:small   9/10    412ms  930ms  1.25s  101ms  200ms     62     2
 -  route fast  10/10    300ms  500ms  600ms  100ms  120ms    100     0

groq:small failed 1: rate_limited 1 (groq#1: slow down)

latency: █ median, ░ to p95
backup:big  ████████▋░                        250ms · p95 300ms
groq:small  ██████████████▏░░░░░░░░░░░░░░░░░  412ms · p95 930ms
route fast  ██████████▍░░░░░░                 300ms · p95 500ms

suggested route order for fast: backup:big, groq:small
  [tasks.fast]
  route = ["backup:big", "groq:small"]
"""


def render(out: Outcome, width: int = 100) -> str:
    buffer = io.StringIO()
    print_outcome(Console(file=buffer, width=width, color_system=None), out)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def test_human_output_screenshot() -> None:
    assert render(outcome(*FIXED)) == SCREEN


def test_human_output_when_the_order_stands_and_nothing_answered() -> None:
    idle = Summary(Target("dead:m"), 3, 0, {NOT_SENT: 3}, examples={NOT_SENT: "dead#1: off"})
    text = render(outcome(FIXED[1], idle), width=80)
    assert "dead:m failed 3: not_sent 3 (dead#1: off)" in text
    assert "latency:" not in text  # one bar would add nothing to the table
    assert " -  dead:m" in text and "0/3" in text
    rec = recommend("fast", ["backup:big", "dead:m"], rank([FIXED[1], idle]))
    lines = render(replace(outcome(FIXED[1], idle), recommendations=[rec]), width=80)
    assert "the route order of fast is already the fastest measured" in lines
    assert "not ranked: dead:m (answered fewer than 90% of its requests" in lines


def test_bars_grow_in_eighths_of_a_cell() -> None:
    assert bar(1.0, 1.0, 4) == "████"
    assert bar(0.5, 1.0, 4) == "██"
    assert bar(1 / 32, 1.0, 4) == "▏"
    assert bar(0.0, 1.0, 4) == ""
    assert bar(2.0, 1.0, 4) == "████"  # clipped to the width


# -- the progress bar --------------------------------------------------------------------------


def test_no_progress_bar_when_not_a_terminal() -> None:
    out = io.StringIO()
    with progress(Console(file=out, force_terminal=False)) as bar_:
        assert bar_ is None
    assert out.getvalue() == ""


def test_progress_bar_on_a_terminal() -> None:
    out = io.StringIO()
    target = Target("groq:small")
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with progress(console) as bar_:
        assert bar_ is not None
        bar_.started(target, 3)
        bar_.measured(target, Sample("ok", 0.1))
        bar_.measured(target, Sample("timeout"))
        bar_.waiting(target, 2.0)
        task = bar_.progress.tasks[0]
        assert (task.completed, task.total) == (2, 3)
        assert task.fields["note"] == "[yellow]waiting 2.0s for budget[/]"
    assert "groq:small" in out.getvalue()
    with progress(console, enabled=False) as quiet:
        assert quiet is None


# -- end to end, against the fake provider -------------------------------------------------------

GROQ_DELAY, BACKUP_DELAY = 0.05, 0.02
SLACK = 0.4  # a busy test machine adds to every figure; it never takes away


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state="memory")
    for key in world.groq_keys:
        key.default = Reply.stream(chunks=["one", " two"], delay=GROQ_DELAY)
    world.backup.keys[0].default = Reply.stream(chunks=["one", " two"], delay=BACKUP_DELAY)
    world.write_config(isolated_env / "routes.toml")
    return world


def bench(world: World, *args: str, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, ["bench", *args], input=stdin, env=world.env)
    assert_no_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def targets(result: Any) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return {t["target"]: t for t in json.loads(result.stdout)["targets"]}


def test_figures_follow_the_scripted_latencies(world: World) -> None:
    result = bench(world, "-t", "fast", "-n", "6", "-c", "3", "--json")
    found = targets(result)
    groq, backup = found["groq:small"], found["backup:big"]
    assert (groq["requests"], groq["ok"], groq["failed"], groq["rate_limited_429"]) == (6, 6, 0, 0)
    # A chunk every GROQ_DELAY: the first token after one, the answer after two.
    assert GROQ_DELAY <= groq["ttft_s"]["p50"] <= groq["ttft_s"]["p95"] < GROQ_DELAY + SLACK
    assert 2 * GROQ_DELAY <= groq["latency_s"]["p50"] < 2 * GROQ_DELAY + SLACK
    assert groq["latency_s"]["p50"] <= groq["latency_s"]["p95"] <= groq["latency_s"]["max"]
    assert BACKUP_DELAY <= backup["ttft_s"]["p50"] < BACKUP_DELAY + SLACK
    assert 2 * BACKUP_DELAY <= backup["latency_s"]["p50"] < 2 * BACKUP_DELAY + SLACK
    assert groq["output_tokens_per_s"] > 0
    # The pool's keys take turns. At first contact a key has one request in flight until its
    # headers are heard, and a request that meets it busy takes the next free key: so every
    # key answers, though not always an equal share.
    shares = {k: v["ok"] for k, v in groq["keys"].items()}
    assert set(shares) == {"groq#1", "groq#2", "groq#3"} and sum(shares.values()) == 6
    assert all(n >= 1 for n in shares.values()), shares
    assert [(t["target"], t["rank"]) for t in json.loads(result.stdout)["targets"]] == [
        ("backup:big", 1), ("groq:small", 2)]  # fmt: skip
    # Exactly the planned requests went out, each streamed.
    log = world.server
    assert len(log.calls("groq")) == 6 and len(log.calls("backup")) == 6
    assert all(entry.stream for entry in log.log)
    advice = json.loads(result.stdout)["recommendations"]
    assert advice == [{"task": "fast", "configured": ["groq:small", "backup:big"],
                       "suggested": ["backup:big", "groq:small"], "unranked": [],
                       "changed": True}]  # fmt: skip


def test_failures_are_counted_by_kind_and_429s_are_waited_out(world: World) -> None:
    world.backup.keys[0].script(Reply.too_large(), Reply.rate_limited(reset=0.05),
                                Reply.too_large())  # fmt: skip
    backup = targets(bench(world, "-m", "backup:big", "-n", "5", "-c", "1", "--json"))["backup:big"]
    assert (backup["requests"], backup["ok"], backup["failed"]) == (5, 3, 2)
    assert backup["failures"] == {"too_large": 2}
    assert backup["rate_limited_429"] == 1
    assert backup["waited_s"] > 0  # the router waited out the cooldown; no second 429
    assert backup["rank"] is None  # 60% answered
    assert backup["failure_examples"]["too_large"].startswith("backup#1: ")
    assert len(world.server.calls(provider="backup")) == 6


def test_route_mode_measures_what_the_user_gets(world: World) -> None:
    for key in world.groq_keys:
        key.default = Reply.unauthorized()
    found = targets(bench(world, "--route", "fast", "-n", "4", "-c", "1", "--json"))
    route = found["fast"]
    assert route["mode"] == "route" and route["rank"] is None
    assert (route["requests"], route["ok"]) == (4, 4)
    assert set(route["keys"]) == {"backup#1"}  # every answer came from the fallback
    assert 2 * BACKUP_DELAY <= route["latency_s"]["p50"] < 2 * BACKUP_DELAY + SLACK
    # Each groq key failed once, and was then left alone (disabled), not burnt again.
    assert len(world.server.calls(provider="groq")) == 3


def test_csv_output(world: World) -> None:
    result = bench(world, "-t", "fast", "-n", "2", "--csv", "--route", "fast")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["target"], r["mode"], r["ok"]) for r in rows] == [
        ("backup:big", "candidate", "2"), ("groq:small", "candidate", "2"), ("fast", "route", "2"),
    ]  # fmt: skip
    assert list(rows[0]) == list(CSV_COLUMNS)


def test_human_output_plan_on_stderr_and_no_progress_bar_in_a_pipe(world: World) -> None:
    result = bench(world, "-t", "fast", "-n", "3")
    assert result.exit_code == 0
    assert "bench: 2 targets × 3 streamed requests, 2 at a time" in result.stderr
    assert "groq:small  about 1 each on groq#1, groq#2, groq#3" in result.stderr
    assert "backup:big  3 on backup#1" in result.stderr
    assert "━" not in result.stderr and "\x1b" not in result.stderr  # no bar, no live display
    assert "ranked by median latency" in result.stdout
    assert "suggested route order for fast: backup:big, groq:small" in result.stdout
    assert "bench:" not in result.stdout


def test_quiet_prints_only_the_results(world: World) -> None:
    result = bench(world, "-m", "backup:big", "-n", "2", "-q")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "backup:big" in result.stdout


def test_prompt_file_is_sent(world: World, isolated_env: Path) -> None:
    (isolated_env / "prompt.txt").write_text("Name three rivers.\n")
    assert bench(world, "-m", "backup:big", "-n", "1", "--prompt-file", "prompt.txt").exit_code == 0
    body = world.server.log[-1].body
    assert body is not None and body["messages"] == [
        {"role": "user", "content": "Name three rivers.\n"}]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "choose one"),
        (["-p", "hi", "--prompt-file", "x.txt"], "not both"),
        (["--prompt-file", "missing.txt"], "cannot read the prompt file"),
        (["-p", "  "], "the prompt is empty"),
        (["-m", "nope:x"], "no provider 'nope'"),
        (["-t", "nope"], "no task 'nope'"),
    ],
)
def test_usage_errors_exit_2(world: World, args: list[str], message: str) -> None:
    result = bench(world, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert world.server.log == []


def test_unusable_entries_are_skipped_with_the_reason(world: World) -> None:
    world.env.pop("BACKUP_KEY")
    result = bench(world, "-t", "fast", "-n", "1")
    assert result.exit_code == 0
    assert "not measured: backup:big (set BACKUP_KEY (backup))" in result.stderr


# -- the spend warning ---------------------------------------------------------------------------


@pytest.fixture
def capped(world: World, isolated_env: Path) -> World:
    world.config["providers"]["groq"]["models"]["small"]["requests"] = ["30/minute", "20/day"]
    world.write_config(isolated_env / "routes.toml")
    return world


def test_spend_over_the_share_of_a_daily_budget_is_refused_without_a_terminal(
    capped: World,
) -> None:
    result = bench(capped, "-m", "groq:small", "-n", "10")
    assert result.exit_code == 2
    assert "groq#1 · small: 4 of its 20/day (20 left), more than 10%" in result.stderr
    assert "4 requests of groq#1's 20/day on small" in result.stderr
    assert "pass --yes" in result.stderr
    assert capped.server.log == []


def test_spend_is_asked_for_on_a_terminal(capped: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmroute.cli.bench_run.interactive", lambda: True)
    declined = bench(capped, "-m", "groq:small", "-n", "10", stdin="n\n")
    assert declined.exit_code == 1
    assert "Spend 4 requests of groq#1's 20/day on small; 4 requests of groq#2's" in declined.stderr
    assert "nothing was sent" in declined.stderr
    assert capped.server.log == []
    accepted = bench(capped, "-m", "groq:small", "-n", "10", stdin="y\n")
    assert accepted.exit_code == 0
    assert len(capped.server.log) == 10


def test_yes_or_a_larger_share_skips_the_question(capped: World) -> None:
    assert bench(capped, "-m", "groq:small", "-n", "3", "--yes", "-q").exit_code == 0
    result = bench(capped, "-m", "groq:small", "-n", "3", "--max-share", "0.5")
    assert result.exit_code == 0
    assert "more than" not in result.stderr
    assert len(capped.server.log) == 6


def test_within_the_share_nothing_is_asked(capped: World) -> None:
    result = bench(capped, "-m", "groq:small", "-n", "6", "--json")
    assert result.exit_code == 0  # 2 requests a key: 10% of 20
    assert json.loads(result.stdout)["spend"][0]["daily"] == 20
