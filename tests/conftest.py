"""Shared fixtures: the real servers (InfluxDB 1.x, VictoriaMetrics) and the simulated bank."""

pytest_plugins = [
    "tests.fixtures.servers", "tests.fixtures.bank", "tests.fixtures.exclusive", "tests.fixtures.cpu_report",
    "tests.fixtures.browser", "tests.fixtures.process_state",
]
