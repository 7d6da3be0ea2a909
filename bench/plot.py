"""PNG plots of load-benchmark results (matplotlib, Agg backend; imported only when asked)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def title(report: dict, what: str) -> str:
    machine = report["machine"]
    return (
        f"{what}: {report['config']['model']}\n"
        f"{machine['cpu']}, {machine['logical_cores']} threads, "
        f"llama-cpp-python {machine['llama_cpp_python']}"
    )


def save(plt, fig, heading: str, path: Path) -> None:
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(report: dict, path: Path) -> None:
    """Aggregate output tokens/s and p50 TTFT against concurrency, one line per server."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    concurrency = sorted({p["concurrency"] for data in report["servers"].values() for p in data["results"]})
    for name, data in report["servers"].items():
        phases = data["results"]
        xs = [p["concurrency"] for p in phases]
        left.plot(xs, [p["output_tok_s"] for p in phases], marker="o", label=name)
        right.plot(xs, [p["ttft_p50_s"] for p in phases], marker="o", label=name)
    for axis, label in ((left, "output tokens/s (all clients)"), (right, "p50 TTFT (s)")):
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(label)
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrency, [str(c) for c in concurrency])
        axis.grid(alpha=0.3)
        axis.legend()
    save(plt, fig, title(report, "Throughput vs concurrency"), path)


def plot_followup(report: dict, path: Path) -> None:
    """Follow-up TTFT against history length: cold (dashed) and warm (solid) per server."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for name, data in report["servers"].items():
        rows = data["results"]
        xs = [r["history_tokens"] for r in rows]
        (line,) = axis.plot(xs, [r["warm_ttft_p50_s"] for r in rows], marker="o", label=f"{name} warm")
        axis.plot(
            xs,
            [r["cold_ttft_p50_s"] for r in rows],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} cold",
        )
    axis.set_xlabel("history tokens")
    axis.set_ylabel("p50 TTFT of the follow-up turn (s)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save(plt, fig, title(report, "Follow-up TTFT vs history"), path)


def plot_interleave(report: dict, path: Path) -> None:
    """p50 and p90 follow-up TTFT per server, interleaved conversations."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    names = list(report["servers"])
    width = 0.38
    for offset, key in ((-width / 2, "followup_ttft_p50_s"), (width / 2, "followup_ttft_p90_s")):
        values = [report["servers"][n]["results"][key] for n in names]
        axis.bar([i + offset for i in range(len(names))], values, width, label=key.split("_")[-2])
    axis.set_xticks(range(len(names)), names)
    axis.set_ylabel("follow-up TTFT (s)")
    axis.legend()
    save(plt, fig, title(report, "Interleaved conversations"), path)


PLOTTERS = {"sweep": plot_sweep, "followup": plot_followup, "interleave": plot_interleave}


def plot(report: dict, path: Path) -> None:
    PLOTTERS[report["scenario"]](report, path)
