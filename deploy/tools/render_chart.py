"""Renders the Helm chart with Helm's own Go engine (helm-python-sdk binds the
Helm v4 SDK; no helm binary), as `helm template` would, after `helm lint`.

  render_chart.py CHART OUT.yaml [-f VALUES.yaml]...     render; fail on lint warnings
  render_chart.py CHART --expect-error TEXT [-f VALUES]   fail unless rendering fails with TEXT
  render_chart.py CHART --merged-values OUT.yaml [-f VALUES]...
      write the chart's values.yaml with the files merged over it, as Helm
      would (for check-jsonschema, since the schema describes complete values)
"""

import argparse
import sys

import helm_python as helm
import yaml

RELEASE, NAMESPACE = "example", "default"


def merged(files):
    values = {}
    for f in files:
        _deep_update(values, yaml.safe_load(open(f)) or {})
    return values


def _deep_update(into, new):
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_update(into[k], v)
        else:
            into[k] = v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("chart")
    ap.add_argument("out", nargs="?")
    ap.add_argument("-f", dest="values", action="append", default=[])
    ap.add_argument("--expect-error")
    ap.add_argument("--merged-values")
    opts = ap.parse_args()
    values = merged(opts.values)
    if opts.merged_values:
        with open(opts.merged_values, "w") as out:
            yaml.safe_dump(merged([f"{opts.chart}/values.yaml"] + opts.values), out, sort_keys=False)
        return
    label = f"{opts.chart} {' '.join('-f ' + v for v in opts.values)}".strip()

    if opts.expect_error:
        try:
            with helm.Chart.load(opts.chart) as chart:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            if opts.expect_error in str(e):
                print(f"ok   {label}: rejected as expected ({opts.expect_error})")
                return
            sys.exit(f"ERROR {label}: rejected, but not for {opts.expect_error!r}: {e}")
        sys.exit(f"ERROR {label}: rendered, but should have been rejected with {opts.expect_error!r}")

    lint = helm.lint(opts.chart, values=values, namespace=NAMESPACE)
    # Helm severities: 1 info, 2 warning, 3 error.
    bad = [m for m in lint["messages"] if m["severity"] >= 2] + [{"error": e} for e in lint.get("errors", [])]
    if bad:
        sys.exit(f"ERROR {label}: helm lint: " + "; ".join(f"{m.get('path', '')} {m['error']}" for m in bad))
    try:
        with helm.Chart.load(opts.chart) as chart:
            files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        sys.exit(f"ERROR {label}: helm could not render: {e}")
    docs = []
    for name in sorted(files):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(files[name]):
            if doc:
                docs.append((name, doc))
    with open(opts.out, "w") as out:
        for name, doc in docs:
            out.write(f"---\n# Source: {name}\n")
            yaml.safe_dump(doc, out, sort_keys=False)
    print(f"ok   {label}: helm {helm.helm_sdk_version()} rendered {len(docs)} objects")


if __name__ == "__main__":
    main()
