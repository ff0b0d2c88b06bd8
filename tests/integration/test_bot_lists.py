"""The real-world check of bot detection: the npm crawler list, and real browsers.

Every user agent listed as an instance in the npm package ``crawler-user-agents`` must be
flagged as a bot, and a sample of real browser user agents (the data of the
``fake-useragent`` package, ~7,000 of them, weighted by real-world share) must not. The
npm package is installed by ``scripts/test-data-npm`` into ``tests/data/npm/``
(git-ignored), not copied into the repository. Both rates are printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tuike.adapters.useragent import DEFAULT_EXCEPTIONS, BotPatterns, UserAgents, user_agents

ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = ROOT / "tests" / "data" / "npm"
LIST = NPM_DIR / "node_modules" / "crawler-user-agents" / "crawler-user-agents.json"


def _say(request: pytest.FixtureRequest, line: str) -> None:
    print(line)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.fixture(scope="session")
def npm_crawlers() -> dict[str, Any]:
    """Install the npm package (once; kept in tests/data/npm) and return its list."""
    if not LIST.is_file():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: cannot fetch the crawler-user-agents npm package")
        subprocess.run([str(ROOT / "scripts" / "test-data-npm")], check=True, timeout=300)
    meta = json.loads((LIST.parent / "package.json").read_text())
    return {"version": meta["version"], "entries": json.loads(LIST.read_text())}


def test_every_npm_crawler_user_agent_is_flagged_as_a_bot(npm_crawlers, request):
    agents = user_agents()
    instances = [(e["pattern"], ua) for e in npm_crawlers["entries"] for ua in e["instances"]]
    missed = [(p, ua) for p, ua in instances if agents.inspect(ua).bot is None]
    rate = 1 - len(missed) / len(instances)
    # For the record: what crawlerdetect alone (the other list) recognises of this one.
    alone = UserAgents(BotPatterns(exceptions=[e["pattern"] for e in npm_crawlers["entries"]]))
    alone_rate = sum(alone.inspect(ua).bot is not None for _, ua in instances) / len(instances)
    _say(
        request,
        f"crawler-user-agents {npm_crawlers['version']} (npm): {len(instances) - len(missed)} "
        f"of {len(instances)} user agents flagged as bots ({rate:.2%}); crawlerdetect alone "
        f"{alone_rate:.2%}",
    )
    # The only ones let through are the documented exceptions: patterns of the list that
    # match ordinary browsers (TUIKE_FRAUD_BOT_UA_EXCEPTIONS).
    assert {p for p, _ in missed} <= set(DEFAULT_EXCEPTIONS), missed[:10]
    assert rate >= 0.99


def test_real_browser_user_agents_are_not_flagged(request):
    data = resources.files("fake_useragent") / "data" / "browsers.jsonl"
    browsers = [json.loads(line)["useragent"] for line in data.read_text().splitlines() if line]
    agents = user_agents()
    flagged = [ua for ua in browsers if agents.inspect(ua).bot is not None]
    rate = len(flagged) / len(browsers)
    _say(
        request,
        f"fake-useragent browsers: {len(flagged)} of {len(browsers)} flagged as bots ({rate:.2%})",
    )
    assert len(browsers) > 1000
    assert rate <= 0.01, flagged[:10]
