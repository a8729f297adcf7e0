"""Grafana dashboards and provisioning for bank-prober (not part of the installed package).

* ``grafana/dashboards/*.json`` — the dashboards (Grafana dashboard JSON model);
* ``grafana/provisioning/`` — datasource and dashboard provider files for Grafana;
* :mod:`grafana.check` — structural check of the dashboards (``python grafana/check.py``);
* :mod:`grafana.expand` — Grafana's InfluxQL macro and variable expansion, used by the
  tests to run every panel query against a real InfluxDB.
"""
