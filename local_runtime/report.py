"""The demo's report: build/demo/summary.json for machines and build/demo/report.html for people.

The HTML is one self-contained file (plots embedded as PNG data URIs) so it opens anywhere,
including as a CI artefact.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline_scripts.contract import STEPS  # noqa: E402
from pipeline_scripts.module_files import load_module  # noqa: E402

# The notifier Lambda's renderer (a lone file in its package), shared so that the report and the
# e-mails say the same thing about a batch's attributions.
explanations = load_module(
    Path(__file__).resolve().parents[1] / "code" / "notifier" / "explanations.py",
    "report_explanations",
)

STATUS_COLOURS = {"Succeeded": "#1a7f37", "Failed": "#cf222e", "NotExecuted": "#6e7781"}


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _numbers(values: pd.Series) -> tuple[np.ndarray, int]:
    """The finite numbers of a column read as text or numbers, and how many values were not."""
    parsed = pd.to_numeric(values.dropna(), errors="coerce").to_numpy(dtype=float)
    finite = parsed[np.isfinite(parsed)]
    return finite, len(parsed) - len(finite)


def distribution_plot(baseline: pd.DataFrame, batch: pd.DataFrame, drifted: set[str]) -> str:
    """One small histogram per feature: the model's baseline (training split) vs the batch.

    A batch value that is not a finite number in a numeric column (text, "inf", 1e999) is left
    out of the histogram and counted in the panel's title: the data-quality check reports it."""
    columns = [c for c in baseline.columns if c in batch.columns]
    rows = (len(columns) + 3) // 4
    figure, axes = plt.subplots(rows, 4, figsize=(14, 3 * rows), squeeze=False)
    for axis, column in zip(axes.flat, columns, strict=False):
        title = column + ("  (drift)" if column in drifted else "")
        if pd.api.types.is_numeric_dtype(baseline[column]):
            (base, _), (values, odd) = _numbers(baseline[column]), _numbers(batch[column])
            if odd:
                title += f"\n{odd} batch value{'s' * (odd != 1)} not a finite number"
            both = np.concatenate([base, values])
            try:
                bins = np.histogram_bin_edges(both, bins=30) if len(both) else 30
            except ValueError:  # a range wider than a float holds, e.g. -1e308 to 1e308
                axis.set_title(title + "\nvalues too large to plot")
                continue
            axis.hist(base, bins=bins, alpha=0.6, density=len(base) > 0, label="baseline")
            axis.hist(values, bins=bins, alpha=0.6, density=len(values) > 0, label="batch")
        else:
            shares = pd.DataFrame(
                {
                    "baseline": baseline[column].astype(str).value_counts(normalize=True),
                    "batch": batch[column].astype(str).value_counts(normalize=True),
                }
            ).fillna(0)
            shares.plot.bar(ax=axis, alpha=0.8, legend=False, rot=0)
        axis.set_title(title, color="#cf222e" if column in drifted else "black")
    for axis in list(axes.flat)[len(columns) :]:
        axis.axis("off")
    axes.flat[0].legend()
    figure.suptitle("Feature distributions: model baseline vs inference batch")
    return _png(figure)


def metrics_plot(model_versions: list[dict]) -> str:
    """MSE of each model version next to its mean-predictor baseline and the threshold."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = [f"v{m['version']} ({m['approval_status']})" for m in model_versions]
    positions = np.arange(len(labels))
    axis.bar(positions - 0.2, [m["metrics"].get("mse", np.nan) for m in model_versions],
             width=0.4, label="model MSE")  # fmt: skip
    axis.bar(positions + 0.2, [m.get("mean_predictor_mse", np.nan) for m in model_versions],
             width=0.4, label="mean-predictor MSE")  # fmt: skip
    threshold = model_versions[0].get("threshold") if model_versions else None
    if threshold is not None:
        axis.axhline(threshold, color="#cf222e", linestyle="--", label="accuracy_mse_threshold")
    axis.set_xticks(positions, labels)
    axis.set_ylabel("MSE on the test split")
    axis.legend()
    axis.set_title("Metrics per model version")
    return _png(figure)


def _metric(value) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else html.escape(str(value))


def recent_versus(recent: dict) -> str:
    """ "; on 120 recent labelled records: challenger MSE 4.10 vs champion 9.80", or ""."""
    if not recent.get("item_count"):
        return ""
    text = (
        f"; on {recent['item_count']:,} recent labelled records: challenger MSE "
        f"{_metric(recent['challenger']['mse']['value'])}"
    )
    if "champion" in recent:
        text += f" vs champion {_metric(recent['champion']['mse']['value'])}"
    return text


def champion_table(model_versions: list[dict]) -> str:
    """Each version's MSE beside the champion it was evaluated against, on the same rows,
    and both on the recent labelled rows held out from training (when there were any)."""
    rows = []
    for m in model_versions:
        champion = m.get("champion") or {"version": "none"}
        if champion.get("version", "none") == "none":
            versus = "no Approved version then: challenger only"
        else:
            versus = (
                f"v{html.escape(str(champion['version']))}: MSE "
                f"{_metric(champion['regression_metrics']['mse']['value'])} on the same "
                f"{champion['item_count']:,} records"
            )
        versus += recent_versus(m.get("recent") or {"item_count": 0})
        rows.append(
            f"<tr><td>v{m['version']}</td><td>{html.escape(m['approval_status'])}</td>"
            f"<td>{_metric(m['metrics'].get('mse', 'NaN'))}</td><td>{versus}</td></tr>"
        )
    return (
        "<table><tr><th>version</th><th>status</th><th>challenger MSE</th>"
        "<th>champion</th></tr>" + "".join(rows) + "</table>"
    )


def _image(plot, *args) -> str:
    """An <img> of plot(*args), or one line saying why there is none: the report is written
    whatever the data looks like."""
    try:
        return f"<img src='{plot(*args)}'>"
    except Exception as error:  # noqa: BLE001 - a plot must never cost the report
        plt.close("all")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"<p>(plot not drawn: {html.escape(reason)})</p>"


def _step_item(step: dict) -> str:
    colour = STATUS_COLOURS.get(step["status"], "#000")
    reason = step.get("failure_reason")
    return (
        f"<li><span style='color:{colour}'>{step['status']}</span> {html.escape(step['name'])}"
        f" ({step['type']}, {step.get('duration_seconds') or 0:.1f} s)"
        + (f"<br><code>{html.escape(reason)}</code>" if reason else "")
        + "</li>"
    )


def _execution_table(executions: list[dict]) -> str:
    rows = [
        f"<tr><td>{html.escape(e['pipeline'])}<br><small>{html.escape(e.get('trigger', ''))}"
        f"</small></td><td style='color:{STATUS_COLOURS.get(e['status'], '#000')}'>"
        f"{e['status']}</td><td>{e.get('duration_seconds') or 0:.1f} s</td>"
        f"<td><ul>{''.join(_step_item(s) for s in e['steps'])}</ul></td></tr>"
        for e in executions
    ]
    return (
        "<table><tr><th>pipeline</th><th>status</th><th>duration</th><th>steps</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _notifications(notifications: list[dict]) -> str:
    return "".join(
        "<div class='mail'><div class='subject'>"
        f"{html.escape(n['subject'])}</div><pre>{html.escape(n['body'])}</pre></div>"
        for n in notifications
    )


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def _batch_explanations(attributions: dict | None) -> str:
    """Attributions of the last batch vs the model version's training baseline, and the lines
    the e-mails carry (one renderer: code/notifier/explanations.py)."""
    if not attributions:
        step = STEPS["explain_batch"]
        return f"<p>No explanations: the batch's {step} step did not run.</p>"
    lines = "".join(
        f"<li>{html.escape(line)}</li>" for line in explanations.explanation_lines(attributions)
    )
    return (
        "<h3>Explanations: attributions, training baseline vs batch</h3>"
        f"<ul>{lines}</ul>{_html_table(*explanations.batch_table(attributions))}"
    )


def _global_importance(versions: list[dict]) -> str:
    """Each version's mean |contribution| per feature on its test split, the champion (the
    newest Approved version) marked, so a new version's importance sits next to the
    champion's."""
    explained = [v for v in versions if v.get("attributions")]
    if not explained:
        return ""
    approved = [v["version"] for v in versions if v["approval_status"] == "Approved"]
    champion = approved[-1] if approved else None
    names = list(explained[-1]["attributions"]["test"]["features"])
    header = ["feature"] + [
        f"version {v['version']} "
        f"({'champion' if v['version'] == champion else v['approval_status']})"
        for v in explained
    ]
    rows = []
    for name in names:
        row = [name]
        for version in explained:
            values = version["attributions"]["test"]["features"].get(name)
            row.append(f"{values['mean_abs']:.3g} ({values['rank']})" if values else "–")
        rows.append(row)
    return (
        "<h3>Global importance per version: mean abs. contribution on the test split (rank)</h3>"
        + _html_table(header, rows)
    )


def _model_cards(versions: list[dict]) -> str:
    """Each version's card as registered (Markdown, shown as text; one click opens it)."""
    cards = [v for v in versions if v.get("model_card")]
    return "".join(
        f"<details><summary>Model card: version {v['version']} ({v['approval_status']} now)"
        f"</summary><pre>{html.escape(v['model_card'])}</pre></details>"
        for v in cards
    )


def write_report(
    summary: dict,
    out_dir: Path,
    baseline: pd.DataFrame | None = None,
    batch: pd.DataFrame | None = None,
) -> tuple[Path, Path]:
    """Writes summary.json and report.html; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")

    drifted = {v["feature_name"] for v in summary.get("data_quality_violations", [])}
    sections = []
    if summary.get("error"):
        sections.append(
            f"<h2 style='color:#cf222e'>The loop stopped early</h2><p>"
            f"{html.escape(summary['error'])}</p>"
        )
    for upload in summary.get("unrouted_uploads", []):
        sections.append(f"<p style='color:#cf222e'>{html.escape(upload)}</p>")
    sections.append(f"<h2>Executions</h2>{_execution_table(summary.get('executions', []))}")
    if summary.get("model_versions"):
        plot = _image(metrics_plot, summary["model_versions"])
        table = champion_table(summary["model_versions"])
        importance = _global_importance(summary["model_versions"])
        cards = _model_cards(summary["model_versions"])
        sections.append(f"<h2>Model versions</h2>{plot}{table}{importance}{cards}")
    if baseline is not None and batch is not None:
        notes = summary.get("data_quality_notes", [])
        sections.append(
            "<h2>Data quality</h2>"
            f"{_image(distribution_plot, baseline, batch, drifted)}<ul>"
            + "".join(
                f"<li><b>{html.escape(str(v['feature_name']))}</b> "
                f"{html.escape(str(v['constraint_check_type']))}: "
                f"{html.escape(str(v['description']))}</li>"
                for v in summary.get("data_quality_violations", [])
            )
            + "".join(f"<li>{html.escape(str(note))}</li>" for note in notes)
            + "</ul>"
            + _batch_explanations(summary.get("batch_attributions"))
        )
    failed = [
        d for d in summary.get("event_deliveries", []) if d.get("outcome", "").startswith("failed")
    ]
    if failed:
        sections.append(
            f"<h2 style='color:#cf222e'>Failed deliveries ({len(failed)})</h2><ul>"
            + "".join(
                f"<li>{html.escape(d['rule'])} -> {html.escape(d['target'])} "
                f"({html.escape(d['event_type'])}): {html.escape(d['outcome'])}</li>"
                for d in failed
            )
            + "</ul>"
        )
    sections.append(
        f"<h2>Notifications ({len(summary.get('notifications', []))})</h2>"
        + _notifications(summary.get("notifications", []))
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Local MLOps loop: report</title><style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #d0d7de; padding: 6px;
vertical-align: top; text-align: left; }} ul {{ margin: 0; padding-left: 1.2em; }}
.mail {{ border: 1px solid #d0d7de; border-radius: 6px; margin: 1em 0; }}
.subject {{ background: #f6f8fa; padding: 6px 10px; font-weight: 600; }}
pre {{ margin: 0; padding: 10px; white-space: pre-wrap; }} img {{ max-width: 100%; }}
</style></head><body><h1>Local MLOps loop</h1>
<p>Ran in {summary.get("duration_seconds", 0):.1f} s on this machine, no AWS account and no
Docker; the same pipeline definitions and event rules as the deployment.</p>
{"".join(sections)}</body></html>
"""
    report_path = out_dir / "report.html"
    report_path.write_text(page, encoding="utf-8")
    return summary_path, report_path
