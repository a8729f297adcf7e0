"""From a configuration path to what the daemon runs: the validated config and its plans.

:func:`prober.config.loader.read` parses and validates (the config layer knows nothing of
journeys); :func:`load` then compiles the journey plans, which checks what needs the whole
tree (duplicate names, templates, certificates, signers), and last checks that there is
something to probe (at least one enabled check) and a concurrency slot for every site.
Every problem is reported at once, in one :class:`~prober.config.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prober.config.errors import ConfigError
from prober.config.loader import read
from prober.config.model import Config
from prober.journey.browser.availability import missing_browser
from prober.journey.plan import JourneyPlan, compile_config

if TYPE_CHECKING:
    from prober.journey.dispatch import JourneyRunner


@dataclass(slots=True, frozen=True)
class LoadedConfig:
    """A validated configuration and the plans compiled from it."""

    config: Config
    plans: list[JourneyPlan]
    files: tuple[Path, ...]
    site_files: Mapping[str, str] = field(default_factory=dict)
    """Each site's name → the file it is configured in (for messages naming the file)."""


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, validate and compile; raises :class:`ConfigError` with every problem."""
    source = read(path, environ)
    plans = compile_config(source.config, source.site_origin)
    problems = _probing_problems(Path(path), source.config, plans, source.daemon_file)
    if problems:
        raise ConfigError(problems)
    site_files = {
        site.name: source.site_origin.get(index, "<config>") for index, site in enumerate(source.config.sites)
    }
    return LoadedConfig(config=source.config, plans=plans, files=source.files, site_files=site_files)


def _probing_problems(path: Path, config: Config, plans: list[JourneyPlan], daemon_file: Path) -> list[str]:
    """Rules on what the daemon will schedule: something to probe, a slot for every site."""
    if not config.sites:
        return [f"{path}: nothing to probe: no [[sites]] defined"]
    if not plans:
        return [f"{path}: nothing to probe: every check is disabled (enabled = false)"]
    browser = [plan for plan in plans if plan.browser is not None]
    if browser and (reason := missing_browser(config.daemon.chromium)) is not None:
        names = ", ".join(f"{plan.site}/{plan.check}" for plan in browser[:3]) + (", …" if len(browser) > 3 else "")
        return [f"{path}: browser checks ({names}) cannot run here: {reason}"]
    cap = config.daemon.max_concurrency
    sites = len({plan.site for plan in plans})
    if cap is not None and cap < sites:
        return [f"{daemon_file}: daemon.max_concurrency: {cap} is less than the {sites} sites with enabled "
                "checks; each site needs a slot of its own (remove it to size it from the checks)"]
    return []


def journey_runner(config: Config) -> JourneyRunner:
    """The runner of a configuration's plans: HTTP for API checks, and the process's one
    browser for browser checks (``[daemon]`` says which Chromium, how many at once, and
    how much evidence is kept under ``state_dir``)."""
    from prober.journey.dispatch import JourneyRunner  # the HTTP client: `prober validate` does without

    daemon = config.daemon
    return JourneyRunner.for_state_dir(daemon.state_dir, daemon.chromium, daemon.browser_concurrency,
                                       daemon.evidence_runs, daemon.evidence_max_size)
