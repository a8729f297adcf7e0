"""Structural check of the Grafana dashboards: ``python grafana/check.py [FILE.json ...]``.

Without arguments it checks every ``grafana/dashboards/*.json``. It prints one line per
problem (``file: where: what``) and exits 1 when there is any, 0 otherwise (2 when a
file cannot be read or is not JSON). What it checks, on each dashboard:

* ``uid`` (at most 40 characters of ``[A-Za-z0-9_-]``) and ``title`` are set, and
  ``schemaVersion`` is at least :data:`MIN_SCHEMA_VERSION`; uids are unique across files;
* every panel (rows' collapsed panels included) has a unique integer ``id``, a ``type``,
  a ``title`` and a ``gridPos`` inside the 24-column grid, and no two panels overlap;
* the ``datasource`` template variable exists (type ``datasource``, query ``influxdb``),
  and every panel, target, query variable and annotation refers to the datasource
  through it: ``{"type": "influxdb", "uid": "${datasource}"}`` (Grafana's built-in
  annotation excepted), so the dashboards import into any Grafana;
* every target is a raw InfluxQL query (``rawQuery: true``), non-empty, with a unique
  ``refId`` and a known ``resultFormat``; it filters on ``$timeFilter``; a
  ``GROUP BY time(...)`` uses ``$__interval`` (or ``$interval``) and says what to
  ``fill``;
* every variable a query, an annotation, a variable query or a title refers to is
  defined (Grafana's built-ins aside); query variables have a non-empty query.

The dashboards are kept as Grafana's own JSON model, so this check (and the tests that run
each query against a real InfluxDB) is what keeps them honest.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

if __package__ in (None, ""):  # ``python grafana/check.py``: make ``grafana`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grafana.expand import is_builtin, referenced_variables  # noqa: E402 - after the sys.path entry above

__all__ = ["DASHBOARD_DIR", "GRID_COLUMNS", "MIN_SCHEMA_VERSION", "check_dashboard", "check_files", "main"]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
GRID_COLUMNS = 24
MIN_SCHEMA_VERSION = 39
DATASOURCE_VARIABLE = "datasource"
DATASOURCE_REF = {"type": "influxdb", "uid": "${datasource}"}
RESULT_FORMATS = {"time_series", "table", "logs"}
_UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_GROUP_BY_TIME = re.compile(r"GROUP\s+BY\s+time\(\s*([^),]+?)\s*(?:,[^)]*)?\)", re.IGNORECASE)
_FILL = re.compile(r"\bfill\(\s*(null|none|previous|linear|-?\d+(?:\.\d+)?)\s*\)", re.IGNORECASE)
_NO_QUERY_PANELS = {"row", "text", "news", "dashlist", "annolist", "welcome"}
_BUILTIN_ANNOTATION_UIDS = {"-- Grafana --", "grafana"}


def _panels(dashboard: dict) -> Iterator[tuple[dict, dict | None]]:
    """Every panel with the collapsed row it sits in (``None`` at top level)."""
    for panel in dashboard.get("panels") or []:
        yield panel, None
        for inner in panel.get("panels") or []:
            yield inner, panel


def _name(panel: dict) -> str:
    return f'panel {panel.get("id", "?")} "{panel.get("title", "")}"'


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


def _is_ds_variable_ref(ref: object) -> bool:
    if isinstance(ref, str):  # old style: the datasource's name
        return ref in ("$datasource", "${datasource}")
    if isinstance(ref, dict):
        return ref.get("uid") in ("$datasource", "${datasource}") and ref.get("type", "influxdb") == "influxdb"
    return False


def check_dashboard(dashboard: object, where: str = "dashboard") -> list[str]:
    """Every problem of one dashboard, each as ``"<where>: <what>"``."""
    if not isinstance(dashboard, dict):
        return [f"{where}: not a JSON object (a Grafana dashboard model)"]
    check = _DashboardCheck(dashboard, where)
    check.identity()
    check.variables()
    check.panels()
    check.annotations()
    return check.problems


class _DashboardCheck:
    """The problems of one dashboard, gathered section by section."""

    def __init__(self, dashboard: dict, where: str) -> None:
        self.dashboard = dashboard
        self.where = where
        self.problems: list[str] = []
        self.defined: set[str] = set()  # the names of the template variables

    def problem(self, what: str) -> None:
        self.problems.append(f"{self.where}: {what}")

    def check_refs(self, text: str, context: str) -> None:
        for name in sorted(referenced_variables(text)):
            if name not in self.defined and not is_builtin(name):
                self.problem(f"{context}: uses ${name}, which is not a template variable of this dashboard")

    # -- identity -------------------------------------------------------------------
    def identity(self) -> None:
        dashboard, problem = self.dashboard, self.problem
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not _UID_RE.match(uid):
            problem(f"uid must be 1-40 characters of letters, digits, - and _ (got {uid!r})")
        if not isinstance(dashboard.get("title"), str) or not dashboard["title"].strip():
            problem("title is missing")
        schema = dashboard.get("schemaVersion")
        if not isinstance(schema, int) or schema < MIN_SCHEMA_VERSION:
            problem(f"schemaVersion must be an integer >= {MIN_SCHEMA_VERSION} (got {schema!r})")
        if "__inputs" in dashboard:
            problem("__inputs found: this is an export 'for sharing externally'; use the datasource variable instead")

    # -- template variables -----------------------------------------------------------
    def variables(self) -> None:
        problem = self.problem
        variables = (self.dashboard.get("templating") or {}).get("list") or []
        for index, variable in enumerate(variables):
            name = variable.get("name")
            if not isinstance(name, str) or not name:
                problem(f"templating.list[{index}]: variable without a name")
                continue
            if name in self.defined:
                problem(f"variable ${name} is defined twice")
            self.defined.add(name)
        ds_vars = [v for v in variables if v.get("name") == DATASOURCE_VARIABLE]
        if not ds_vars:
            problem(f'no "{DATASOURCE_VARIABLE}" template variable (type datasource, query influxdb)')
        elif ds_vars[0].get("type") != "datasource" or ds_vars[0].get("query") != "influxdb":
            problem(f'variable ${DATASOURCE_VARIABLE} must be of type "datasource" with query "influxdb"')
        for variable in variables:
            if variable.get("type") == "query":
                self._query_variable(variable)

    def _query_variable(self, variable: dict) -> None:
        name = variable.get("name")
        context = f"variable ${name}"
        if not _is_ds_variable_ref(variable.get("datasource")):
            self.problem(f"{context}: datasource must be {json.dumps(DATASOURCE_REF)}, "
                         f"got {json.dumps(variable.get('datasource'))}")
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not isinstance(query, str) or not query.strip():
            self.problem(f"{context}: the query is empty")
            return
        self.check_refs(query, context)
        if f"${name}" in query or f"${{{name}}}" in query:
            self.problem(f"{context}: the query refers to the variable itself")

    # -- panels -----------------------------------------------------------------------
    def panels(self) -> None:
        ids: dict[int, str] = {}
        placed: list[tuple[dict, dict, dict | None]] = []
        panel_list = self.dashboard.get("panels")
        if not isinstance(panel_list, list) or not panel_list:
            self.problem("no panels")
        for panel, row in _panels(self.dashboard):
            name = _name(panel)
            self._panel_id(panel, name, ids)
            ptype = panel.get("type")
            if not isinstance(ptype, str) or not ptype:
                self.problem(f"{name}: type is missing")
            if not isinstance(panel.get("title"), str) or (ptype != "row" and not panel["title"].strip()):
                self.problem(f"{name}: title is missing")
            else:
                self.check_refs(panel["title"], name)
            grid = self._grid(panel, name)
            if grid is not None:
                placed.append((panel, grid, row))
            if ptype not in _NO_QUERY_PANELS:
                self._panel_queries(panel, name)
        for i, (a, grid_a, row_a) in enumerate(placed):
            for b, grid_b, row_b in placed[i + 1 :]:
                if row_a is row_b and _overlap(grid_a, grid_b):
                    self.problem(f"{_name(a)} at {_fmt_grid(grid_a)} overlaps {_name(b)} at {_fmt_grid(grid_b)}")

    def _panel_id(self, panel: dict, name: str, ids: dict[int, str]) -> None:
        pid = panel.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            self.problem(f"{name}: id must be an integer")
        elif pid in ids:
            self.problem(f"{name}: duplicate panel id {pid} (also {ids[pid]})")
        else:
            ids[pid] = name

    def _grid(self, panel: dict, name: str) -> dict | None:
        """The panel's gridPos when it is a valid place on the grid, else None (and a problem)."""
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            self.problem(f"{name}: gridPos must have integer x, y, w and h")
        elif grid["w"] <= 0 or grid["h"] <= 0 or grid["x"] < 0 or grid["y"] < 0:
            self.problem(f"{name}: gridPos {grid} must have x, y >= 0 and w, h > 0")
        elif grid["x"] + grid["w"] > GRID_COLUMNS:
            self.problem(f"{name}: gridPos x + w = {grid['x'] + grid['w']} goes past the {GRID_COLUMNS}-column grid")
        else:
            return grid
        return None

    def _panel_queries(self, panel: dict, name: str) -> None:
        if not _is_ds_variable_ref(panel.get("datasource")):
            self.problem(f"{name}: datasource must be {json.dumps(DATASOURCE_REF)}, "
                         f"got {json.dumps(panel.get('datasource'))}")
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            self.problem(f"{name}: no targets (queries)")
            return
        ref_ids: set[str] = set()
        for index, target in enumerate(targets):
            self._target(target, index, name, ref_ids)

    def _target(self, target: dict, index: int, name: str, ref_ids: set[str]) -> None:
        problem = self.problem
        ref_id = target.get("refId")
        context = f"{name} target {ref_id or index}"
        if not isinstance(ref_id, str) or not ref_id:
            problem(f"{context}: refId is missing")
        elif ref_id in ref_ids:
            problem(f"{context}: duplicate refId")
        else:
            ref_ids.add(ref_id)
        if "datasource" in target and not _is_ds_variable_ref(target["datasource"]):
            problem(f"{context}: datasource must be {json.dumps(DATASOURCE_REF)}, "
                    f"got {json.dumps(target['datasource'])}")
        if target.get("rawQuery") is not True:
            problem(f"{context}: rawQuery must be true (raw InfluxQL)")
        query = target.get("query")
        if not isinstance(query, str) or not query.strip():
            problem(f"{context}: the query is empty")
            return
        if target.get("resultFormat", "time_series") not in RESULT_FORMATS:
            problem(f"{context}: resultFormat must be one of {', '.join(sorted(RESULT_FORMATS))}")
        self._query(query, context)
        alias = target.get("alias")
        if isinstance(alias, str):
            self.check_refs(alias, f"{context} alias")

    def _query(self, query: str, context: str) -> None:
        self.check_refs(query, context)
        if "$timeFilter" not in query:
            self.problem(f"{context}: the query does not filter on $timeFilter (it would scan all data)")
        for match in _GROUP_BY_TIME.finditer(query):
            if match.group(1) not in ("$__interval", "$interval", "${__interval}"):
                self.problem(f"{context}: GROUP BY time({match.group(1)}) should use $__interval "
                             "so long ranges stay fast")
            if not _FILL.search(query):
                self.problem(f"{context}: GROUP BY time(...) without fill(...): "
                             "say fill(none), fill(null) or fill(0)")

    # -- annotations ------------------------------------------------------------------
    def annotations(self) -> None:
        for index, annotation in enumerate((self.dashboard.get("annotations") or {}).get("list") or []):
            name = f'annotation "{annotation.get("name", index)}"'
            ref = annotation.get("datasource")
            if annotation.get("builtIn") or (isinstance(ref, dict) and ref.get("uid") in _BUILTIN_ANNOTATION_UIDS):
                continue
            if not _is_ds_variable_ref(ref):
                self.problem(f"{name}: datasource must be {json.dumps(DATASOURCE_REF)}, got {json.dumps(ref)}")
            queries = [q for q in (annotation.get("query"), (annotation.get("target") or {}).get("query"))
                       if q is not None]
            if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
                self.problem(f"{name}: the query is empty")
                continue
            if len(set(queries)) > 1:
                self.problem(f"{name}: query and target.query differ")
            for query in set(queries):
                self.check_refs(query, name)
                if "$timeFilter" not in query:
                    self.problem(f"{name}: the query does not filter on $timeFilter")


def _fmt_grid(grid: dict) -> str:
    return f"x={grid['x']} y={grid['y']} w={grid['w']} h={grid['h']}"


def check_files(paths: Iterable[Path]) -> tuple[list[str], int]:
    """Problems of every file, and the exit status (0 ok, 1 problems, 2 unreadable)."""
    problems: list[str] = []
    status = 0
    uids: dict[str, Path] = {}
    for path in paths:
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            status = 2
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}")
            status = 2
            continue
        problems += check_dashboard(dashboard, str(path))
        uid = dashboard.get("uid") if isinstance(dashboard, dict) else None
        if isinstance(uid, str):
            if uid in uids:
                problems.append(f"{path}: uid {uid!r} is also the uid of {uids[uid]}")
            uids.setdefault(uid, path)
    if problems and status == 0:
        status = 1
    return problems, status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(__doc__.strip())
        return 0
    paths = [Path(a) for a in args] or sorted(DASHBOARD_DIR.glob("*.json"))
    if not paths:
        print(f"no dashboards found in {DASHBOARD_DIR}", file=sys.stderr)
        return 2
    problems, status = check_files(paths)
    for line in problems:
        print(line, file=sys.stderr)
    if status == 0:
        print(f"{len(paths)} dashboard(s) OK: {', '.join(p.name for p in paths)}")
    else:
        print(f"{len(problems)} problem(s) in {len(paths)} dashboard(s)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
