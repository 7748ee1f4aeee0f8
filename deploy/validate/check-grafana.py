#!/usr/bin/env python3
"""Offline checks of the Grafana files in deploy/grafana (run by scripts/check-deploy.sh).

- every dashboard in grafana/dashboards/*.json parses as JSON and has a uid and a title;
- panel ids are unique and panels lie inside the 24-column grid without overlapping;
- every panel that queries (everything but rows) uses the datasource uid `prometheus`,
  and so does each of its targets that names one; every target has a PromQL expr;
- the provisioned datasource has that uid.

With --rules-out FILE it also writes every dashboard query as a Prometheus recording rule
(JSON is YAML), so that `promtool check rules FILE` checks their PromQL syntax. Grafana's
interval variables ($__rate_interval, ...) are replaced by 5m for that.

Whether each metric a query names is one Linkkit exports is checked by the Rust test
suite against a live /metrics scrape, not here.

Standard library only. Exit status 1 on any problem.
"""

import argparse
import json
import pathlib
import re
import sys

DATASOURCE_UID = "prometheus"
GRID_COLUMNS = 24
GRAFANA_VARIABLE = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}")


def panels_of(dashboard):
    """Top-level panels and those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def check_dashboard(path, problems, exprs):
    def fail(msg):
        problems.append(f"{path.name}: {msg}")

    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"not valid JSON: {e}")
        return 0
    for key in ("uid", "title", "panels"):
        if key not in dashboard:
            fail(f"no {key}")
    ids, cells, count = set(), {}, 0
    for panel in panels_of(dashboard):
        count += 1
        title = panel.get("title", "?")
        where = f"panel {panel.get('id')} {title!r}"
        if panel.get("id") in ids:
            fail(f"{where}: duplicate id")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            fail(f"{where}: gridPos missing or incomplete")
        elif grid["x"] < 0 or grid["x"] + grid["w"] > GRID_COLUMNS:
            fail(f"{where}: outside the {GRID_COLUMNS}-column grid")
        else:
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    if (x, y) in cells:
                        fail(f"{where}: overlaps {cells[(x, y)]!r}")
                        break
                    cells[(x, y)] = title
                else:
                    continue
                break
        if panel.get("type") == "row":
            continue
        datasource = panel.get("datasource")
        if not isinstance(datasource, dict) or datasource.get("uid") != DATASOURCE_UID:
            fail(f"{where}: datasource {datasource!r}, expected uid {DATASOURCE_UID!r}")
        targets = panel.get("targets") or []
        if not targets:
            fail(f"{where}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids):
            fail(f"{where}: duplicate refId")
        for target in targets:
            ds = target.get("datasource")
            if ds is not None and (not isinstance(ds, dict) or ds.get("uid") != DATASOURCE_UID):
                fail(f"{where} target {target.get('refId')}: datasource {ds!r}, expected uid {DATASOURCE_UID!r}")
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(f"{where} target {target.get('refId')}: no expr")
            else:
                exprs.append((f"{path.name} {where} {target.get('refId')}", expr))
    return count


def check_provisioning(provisioning, problems):
    """The datasource file must give the uid the dashboards use (no YAML parser needed)."""
    files = sorted((provisioning / "datasources").glob("*.y*ml"))
    if not files:
        problems.append(f"{provisioning}/datasources: no datasource file")
        return
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    if not re.search(rf"^\s*uid:\s*[\"']?{DATASOURCE_UID}[\"']?\s*$", text, re.M):
        problems.append(f"{provisioning}/datasources: no datasource with uid {DATASOURCE_UID}")


def main():
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grafana", type=pathlib.Path, default=here.parent / "grafana")
    parser.add_argument("--rules-out", type=pathlib.Path, help="write the queries as recording rules here")
    args = parser.parse_args()

    problems, exprs = [], []
    dashboards = sorted((args.grafana / "dashboards").glob("*.json"))
    if not dashboards:
        problems.append(f"{args.grafana}/dashboards: no dashboard")
    panels = sum(check_dashboard(d, problems, exprs) for d in dashboards)
    check_provisioning(args.grafana / "provisioning", problems)

    if args.rules_out:
        rules = [
            {"record": f"dashboard:query_{i}", "expr": GRAFANA_VARIABLE.sub("5m", expr),
             "labels": {"source": where}}
            for i, (where, expr) in enumerate(exprs)
        ]
        args.rules_out.write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))

    print(f"{len(dashboards)} dashboard(s), {panels} panels, {len(exprs)} queries on datasource uid {DATASOURCE_UID!r}")
    for p in problems:
        print(f"  problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
