"""A sweep's results: one table of its runs (``results.csv``, ``results.md``) and a plot of test
accuracy against each swept option (``acc_vs_<option>.png``), mean over seeds with error bars."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

#: per-run figures taken from a run's summary.json ("final": the last epoch)
FIGURES = ("analog_test_acc", "best_analog_test_acc", "float_test_acc", "analog_test_loss",
           "epochs", "seconds")


def _value(v) -> str:
    return " ".join(map(str, v)) if isinstance(v, list) else str(v)


def collect(spec, outcome: dict[str, dict]) -> list[dict]:
    """One row per run of the spec: its swept options, status, figures and error."""
    rows = []
    for run in spec.runs:
        folder = spec.out / "runs" / run.id
        res = outcome.get(run.id, {})
        row = {"run": run.id}
        row.update({k: _value(run.options.get(k, "")) for k in spec.swept})
        summary = folder / "summary.json"
        history = folder / "history.json"
        if summary.exists() and res.get("rc", 0) == 0:
            s = json.loads(summary.read_text())
            hist = json.loads(history.read_text()) if history.exists() else [s["final"]]
            final = s["final"]
            row["status"] = "skipped (done)" if res.get("skipped") else (
                "resumed" if res.get("resumed") else "done")
            row["analog_test_acc"] = final.get("analog_test_acc")
            row["best_analog_test_acc"] = max(h["analog_test_acc"] for h in hist)
            row["float_test_acc"] = final.get("float_test_acc", "")
            row["analog_test_loss"] = final.get("analog_test_loss")
            row["epochs"] = final.get("epoch")
            row["seconds"] = round(sum(h.get("seconds", 0.0) for h in hist), 3)
            row["error"] = ""
        else:
            row["status"] = "failed" if res.get("rc") else "not run"
            row.update(dict.fromkeys(FIGURES, ""))
            row["error"] = res.get("error", "")
        row["args"] = " ".join(run.args)
        rows.append(row)
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v).replace("|", "\\|")


def write(spec, rows: list[dict]) -> list[Path]:
    """results.csv, results.md and the accuracy plots; returns their paths."""
    out = spec.out
    keys = list(rows[0])
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Sweep {spec.path.name}: {len(rows)} runs", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in rows]
    groups = _by_seed(spec, rows)
    if groups:
        params = [k for k in spec.swept if k != "seed"]
        lines += ["", "Final analog test accuracy over seeds:", "",
                  "| " + " | ".join(params) + " | runs | mean | std | min | max |",
                  "|" + "---|" * (len(params) + 5)]
        for key, accs in groups.items():
            m, s = _mean_std(accs)
            lines.append("| " + " | ".join(key) + f" | {len(accs)} | {m:.4f} | {s:.4f} | "
                         f"{min(accs):.4f} | {max(accs):.4f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    paths = [out / "results.csv", out / "results.md"]
    for param in spec.swept:
        if param == "seed":
            continue
        p = plot_param(out / f"acc_vs_{param}.png", spec, rows, param)
        if p is not None:
            paths.append(p)
    return paths


def _by_seed(spec, rows) -> dict[tuple, list[float]]:
    """Final accuracies of the finished runs grouped by their swept options other than seed."""
    params = [k for k in spec.swept if k != "seed"]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r["analog_test_acc"] == "":
            continue
        groups.setdefault(tuple(r[k] for k in params), []).append(float(r["analog_test_acc"]))
    return groups


def _mean_std(v: list[float]) -> tuple[float, float]:
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def plot_param(path: Path, spec, rows: list[dict], param: str) -> Path | None:
    """Test accuracy against ``param``: one line per combination of the other swept options
    (seeds excepted), the mean over seeds with error bars of one standard deviation."""
    from ohmflow.host.report import _plt

    others = [k for k in spec.swept if k not in (param, "seed")]
    done = [r for r in rows if r["analog_test_acc"] != ""]
    if not done:
        return None
    values = list(dict.fromkeys(r[param] for r in rows))
    numeric = all(_number(v) is not None for v in values)
    if numeric:
        values.sort(key=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    lines: dict[tuple, dict[str, list[float]]] = {}
    for r in done:
        lines.setdefault(tuple(r[k] for k in others), {}).setdefault(r[param], []).append(
            float(r["analog_test_acc"]))
    for n, (key, by_value) in enumerate(sorted(lines.items())):
        xs = [v for v in values if v in by_value]
        stats = [_mean_std(by_value[v]) for v in xs]
        pos = [float(v) if numeric else values.index(v) + 0.04 * n for v in xs]
        label = ", ".join(f"{k}={v}" for k, v in zip(others, key, strict=True)) or "analog"
        ax.errorbar(pos, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                    capsize=3, label=label)
    if numeric:
        xs = [float(v) for v in values]
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(values)), values)
    seeds = len({r.get("seed", "") for r in rows})
    ax.set(xlabel=param, ylabel="final analog test accuracy",
           title=f"{spec.path.stem}: accuracy vs {param}"
                 + (f" (mean ± std over {seeds} seeds)" if "seed" in spec.swept else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
