"""The daemon (``prober run``): scheduled probing, result consumers, reload, health.

* :mod:`~prober.daemon.scheduler` — APScheduler jobs, concurrency limit, schedule lag;
* :mod:`~prober.daemon.clock` — the scheduler's time and timers (the system's, or a test's);
* :mod:`~prober.daemon.service` — composition: scheduler → results → consumers;
* :mod:`~prober.daemon.alerting` — the incident service's subscribers: notifications
  (maintenance silencing, dispatch) and ``incident`` points;
* :mod:`~prober.daemon.consumers` — the :class:`ResultConsumer` interface, writer adapter;
* :mod:`~prober.daemon.status` — latest result per check (``/status``, the demo view);
* :mod:`~prober.daemon.lockout` — back off a site that refuses our credentials;
* :mod:`~prober.daemon.health` — ``/healthz`` and ``/status``;
* :mod:`~prober.daemon.lifecycle` — startup → main loop → shutdown, signals, reload;
* :mod:`~prober.daemon.sharding` — which sites a ``--shard`` or a worker runs, and as whom;
* :mod:`~prober.daemon.supervisor` — ``--workers N``: start, signal and restart the workers;
* :mod:`~prober.daemon.demo` — ``prober demo``.
"""

from prober.daemon.consumers import ResultConsumer, WriterConsumer
from prober.daemon.lifecycle import Daemon, run
from prober.daemon.lockout import LockoutTracker
from prober.daemon.scheduler import JourneyScheduler
from prober.daemon.service import ProberService
from prober.daemon.status import StatusStore

__all__ = [
    "Daemon",
    "JourneyScheduler",
    "LockoutTracker",
    "ProberService",
    "ResultConsumer",
    "StatusStore",
    "WriterConsumer",
    "run",
]
