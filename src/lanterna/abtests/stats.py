"""The statistical readout of an A/B test or an ad-hoc comparison, and its verdict.

Input is what the store's readout query returns, grouped so that a million traces are a
few hundred rows: per variant, time bucket and metric value, how many traces had it
(:class:`MetricRows`). Every statistic comes from scipy or statsmodels, computed over
frequency-weighted values (equal to the same test on the expanded raw values):

- numeric metrics (score values, cost, latency): mean and its 95 % t interval per
  variant (``DescrStatsW``), difference against the control with Welch's t-test and its
  interval (``CompareMeans``, unequal variances), Mann-Whitney U as a robustness check
  (``scipy.stats.mannwhitneyu``);
- boolean metrics (boolean scores, error rate): proportion with a Wilson interval,
  two-proportion z-test (``proportions_ztest``) and a Wald interval of the difference;
- categorical scores: the share of each category and a chi-square test of the variant
  against the control (``chi2_contingency``);
- Holm's correction (``multipletests``) when more than one variant is compared;
- the sample-ratio mismatch check: chi-square of the units per variant against the
  weights (``scipy.stats.chisquare``; flagged below p = 0.001);
- the sample size per variant needed for a minimum detectable effect at power 0.8
  (``TTestIndPower`` / ``NormalIndPower``);
- the cumulative difference over time with its interval, and a plain-language verdict.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

#: Below this SRM p-value the split is flagged (the common, conservative threshold).
SRM_ALPHA = 0.001
POWER = 0.8
#: Metrics where lower is better (the verdict's direction); scores: higher is better.
LOWER_IS_BETTER = ("cost", "latency", "errorRate")
#: At most this many points in the cumulative series (later buckets are merged).
MAX_POINTS = 60


@dataclass
class MetricRows:
    """A metric's grouped values: ``kind`` is ``numeric``, ``boolean`` or
    ``categorical``; each row is (variant, time bucket, value, traces)."""

    name: str
    kind: str
    rows: list[tuple[str, str, Any, int]] = field(default_factory=list)
    #: Instead of ``rows``, for a numeric metric with (nearly) as many values as traces
    #: (cost, latency): per variant and bucket the traces, sum and sum of squares. Welch's
    #: test depends on n, mean and variance only, so it is exact; Mann-Whitney U and the
    #: distribution, which need the values, are left out.
    moments: list[tuple[str, str, int, float, float]] | None = None


@dataclass
class Operational:
    """Per variant: traces, units (distinct users or sessions), total cost, mean latency
    (seconds), errors."""

    traces: dict[str, int]
    units: dict[str, int]
    cost: dict[str, float]
    latency: dict[str, float | None]
    errors: dict[str, int]


_T = TypeVar("_T")


def _quiet(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Run a statistic without numpy's and statsmodels' warnings: a variance of zero or a
    variant without data gives NaN, which the readout shows as null."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> _T:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return run


def _f(x: Any) -> float | None:
    """A float for JSON: None for NaN, infinities and missing values."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


class _Series:
    """One variant's values and counts (optionally only up to a bucket)."""

    def __init__(self, values: np.ndarray, counts: np.ndarray) -> None:
        self.values = values
        self.counts = counts
        self.n = int(counts.sum())

    def descr(self) -> DescrStatsW:
        return DescrStatsW(self.values, weights=self.counts, ddof=1)

    def expanded(self) -> np.ndarray:
        return np.repeat(self.values, self.counts.astype(np.int64))


def _columns(metric: MetricRows) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows as numpy columns (variant, bucket, value, count), made once per metric."""
    cached = getattr(metric, "_columns", None)
    if cached is None:
        rows = metric.rows
        kind = object if metric.kind == "categorical" else float
        cached = (
            np.array([r[0] for r in rows], dtype=object),
            np.array([r[1] for r in rows], dtype=object),
            np.array([r[2] for r in rows], dtype=kind),
            np.array([r[3] for r in rows], dtype=float),
        )
        metric._columns = cached  # type: ignore[attr-defined]
    return cached


def _from_moments(n: float, total: float, squares: float) -> _Series:
    """Two values with the given count, mean and variance (ddof 1): every statistic that
    depends on these alone (mean, its interval, Welch's test) is the raw data's."""
    if n <= 0:
        return _Series(np.array([], dtype=float), np.array([], dtype=float))
    mean = total / n
    if n < 2:
        return _Series(np.array([mean]), np.array([n], dtype=float))
    var = max((squares - n * mean * mean) / (n - 1), 0.0)
    half = math.sqrt(var * (n - 1) / n)
    return _Series(np.array([mean - half, mean + half]), np.array([n / 2, n / 2]))


def _split(
    metric: MetricRows, variants: Sequence[str], upto: str | None = None
) -> dict[str, _Series]:
    """Per variant its distinct values and their counts (up to bucket ``upto``)."""
    if metric.moments is not None:
        acc_of: dict[str, list[float]] = {v: [0.0, 0.0, 0.0] for v in variants}
        for v, b, n, total, squares in metric.moments:
            if v in acc_of and (upto is None or b <= upto):
                acc = acc_of[v]
                acc[0] += n
                acc[1] += total
                acc[2] += squares
        return {v: _from_moments(*acc) for v, acc in acc_of.items()}
    variant, bucket, value, count = _columns(metric)
    keep = np.ones(len(variant), dtype=bool) if upto is None else bucket <= upto
    out = {}
    for v in variants:
        mask = keep & (variant == v)
        if metric.kind == "categorical":
            keys = sorted(set(value[mask].tolist()))
            index = {k: i for i, k in enumerate(keys)}
            sums = np.zeros(len(keys))
            for k, c in zip(value[mask].tolist(), count[mask].tolist(), strict=True):
                sums[index[k]] += c
            out[v] = _Series(np.array(keys, dtype=object), sums)
            continue
        distinct, inverse = np.unique(value[mask], return_inverse=True)
        totals = np.bincount(inverse, weights=count[mask], minlength=len(distinct))
        out[v] = _Series(distinct, totals)
    return out


# --- per variant ---------------------------------------------------------------------


def _numeric_summary(s: _Series, alpha: float) -> dict[str, Any]:
    if s.n == 0:
        return {"n": 0, "mean": None, "std": None, "ciLow": None, "ciHigh": None}
    d = s.descr()
    low, high = d.tconfint_mean(alpha) if s.n > 1 else (math.nan, math.nan)
    return {
        "n": s.n,
        "mean": _f(d.mean),
        "std": _f(d.std) if s.n > 1 else None,
        "ciLow": _f(low),
        "ciHigh": _f(high),
    }


def _boolean_summary(s: _Series, alpha: float) -> dict[str, Any]:
    ones = int(s.counts[s.values >= 0.5].sum()) if s.n else 0
    if s.n == 0:
        return {"n": 0, "mean": None, "successes": 0, "ciLow": None, "ciHigh": None}
    low, high = proportion_confint(ones, s.n, alpha=alpha, method="wilson")
    return {"n": s.n, "mean": ones / s.n, "successes": ones, "ciLow": _f(low), "ciHigh": _f(high)}


def _categorical_summary(s: _Series) -> dict[str, Any]:
    shares = {str(k): int(c) for k, c in zip(s.values, s.counts, strict=True)}
    return {"n": s.n, "mean": None, "categories": shares}


# --- against the control -------------------------------------------------------------


def _numeric_compare(s: _Series, c: _Series, alpha: float, robust: bool = True) -> dict[str, Any]:
    if s.n < 2 or c.n < 2:
        return {"test": "welch_t", "difference": None, "pValue": None}
    cm = CompareMeans(s.descr(), c.descr())
    t, p, df = cm.ttest_ind(usevar="unequal")
    low, high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    mw = sps.mannwhitneyu(s.expanded(), c.expanded(), alternative="two-sided") if robust else None
    return {
        "test": "welch_t",
        "difference": _f(s.descr().mean - c.descr().mean),
        "ciLow": _f(low),
        "ciHigh": _f(high),
        "statistic": _f(t),
        "df": _f(df),
        "pValue": _f(p),
        "mannWhitneyU": _f(mw.statistic) if mw else None,
        "mannWhitneyP": _f(mw.pvalue) if mw else None,
    }


def _ones(s: _Series) -> int:
    return int(s.counts[s.values >= 0.5].sum()) if s.n else 0


def _boolean_compare(s: _Series, c: _Series, alpha: float) -> dict[str, Any]:
    if s.n == 0 or c.n == 0:
        return {"test": "two_proportion_z", "difference": None, "pValue": None}
    ys, yc = _ones(s), _ones(c)
    if ys + yc in (0, s.n + c.n):  # all 0 or all 1: no variance, nothing to test
        z, p = math.nan, 1.0
    else:
        z, p = proportions_ztest([ys, yc], [s.n, c.n])
    low, high = confint_proportions_2indep(ys, s.n, yc, c.n, method="wald", alpha=alpha)
    return {
        "test": "two_proportion_z",
        "difference": ys / s.n - yc / c.n,
        "ciLow": _f(low),
        "ciHigh": _f(high),
        "statistic": _f(z),
        "pValue": _f(p),
    }


def _categorical_compare(s: _Series, c: _Series) -> dict[str, Any]:
    cats = sorted({*map(str, s.values), *map(str, c.values)})
    table = np.array(
        [
            [dict(zip(map(str, x.values), x.counts, strict=True)).get(k, 0) for k in cats]
            for x in (s, c)
        ]
    )
    table = table[:, table.sum(axis=0) > 0]
    if s.n == 0 or c.n == 0 or table.shape[1] < 2:
        return {"test": "chi_square", "difference": None, "pValue": None}
    res = sps.chi2_contingency(table, correction=False)
    return {
        "test": "chi_square",
        "difference": None,
        "statistic": _f(res.statistic),
        "df": _f(res.dof),
        "pValue": _f(res.pvalue),
    }


#: Every key of a comparison and of a summary (absent ones are null in the API).
_COMPARISON_KEYS = ("difference", "ciLow", "ciHigh", "statistic", "df", "pValue",
                    "mannWhitneyU", "mannWhitneyP")  # fmt: skip
_SUMMARY_KEYS = ("mean", "std", "successes", "ciLow", "ciHigh", "categories")


def _compare(
    kind: str, s: _Series, c: _Series, alpha: float, robust: bool = True
) -> dict[str, Any]:
    if kind == "numeric":
        out = _numeric_compare(s, c, alpha, robust)
    elif kind == "boolean":
        out = _boolean_compare(s, c, alpha)
    else:
        out = _categorical_compare(s, c)
    return {**dict.fromkeys(_COMPARISON_KEYS), **out}


def _summary(kind: str, s: _Series, alpha: float) -> dict[str, Any]:
    if kind == "numeric":
        out = _numeric_summary(s, alpha)
    elif kind == "boolean":
        out = _boolean_summary(s, alpha)
    else:
        out = _categorical_summary(s)
    return {**dict.fromkeys(_SUMMARY_KEYS), **out}


def holm(p_values: Sequence[float | None], alpha: float) -> list[float | None]:
    """Holm-adjusted p-values (None stays None)."""
    known = [(i, p) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if len(known) < 2:  # one comparison: nothing to correct
        for i, p in known:
            out[i] = _f(p)
        return out
    adjusted = multipletests([p for _, p in known], alpha=alpha, method="holm")[1]
    for (i, _), q in zip(known, adjusted, strict=True):
        out[i] = _f(q)
    return out


# --- the readout ---------------------------------------------------------------------


@_quiet
def srm(units: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, Any]:
    """The sample-ratio mismatch check: units per variant against the weights."""
    names = [v for v, w in weights.items() if w > 0]
    observed = np.array([units.get(v, 0) for v in names], dtype=float)
    total = observed.sum()
    stray = sum(units.get(v, 0) for v, w in weights.items() if w <= 0)
    if total == 0 or len(names) < 2:
        return {"pValue": None, "mismatch": stray > 0, "expected": {}, "observed": dict(units)}
    share = np.array([weights[v] for v in names], dtype=float)
    expected = total * share / share.sum()
    res = sps.chisquare(observed, f_exp=expected)
    p = _f(res.pvalue)
    return {
        "pValue": p,
        "statistic": _f(res.statistic),
        "mismatch": stray > 0 or (p is not None and p < SRM_ALPHA),
        "expected": {v: _f(e) for v, e in zip(names, expected, strict=True)},
        "observed": {v: int(units.get(v, 0)) for v in weights},
    }


@_quiet
def sample_size(
    kind: str, control: dict[str, Any], mde: float | None, alpha: float, ratio: float
) -> int | None:
    """Units per non-control variant needed to detect ``mde`` (absolute) at power 0.8;
    None without an MDE, a numeric or boolean metric, or a usable control."""
    if mde is None or control.get("mean") is None:
        return None
    if kind == "numeric":
        sd = control.get("std")
        if not sd:
            return None
        needed = TTestIndPower().solve_power(
            effect_size=mde / sd, alpha=alpha, power=POWER, ratio=1 / ratio
        )
    elif kind == "boolean":
        p = float(control["mean"])
        target = min(max(p + mde, 1e-9), 1 - 1e-9)
        effect = abs(proportion_effectsize(target, p))
        if effect == 0:
            return None
        needed = NormalIndPower().solve_power(
            effect_size=effect, alpha=alpha, power=POWER, ratio=1 / ratio
        )
    else:
        return None
    if not math.isfinite(float(needed)):  # the solver found no answer (an extreme effect)
        return None
    return math.ceil(float(needed) / ratio)


def _buckets(metric: MetricRows) -> list[str]:
    buckets = sorted({r[1] for r in (metric.moments or metric.rows)})
    if len(buckets) <= MAX_POINTS:
        return buckets
    step = math.ceil(len(buckets) / MAX_POINTS)
    picked = buckets[step - 1 :: step]
    return picked if picked[-1] == buckets[-1] else [*picked, buckets[-1]]


def _running(
    metric: MetricRows, variants: Sequence[str], buckets: Sequence[str]
) -> list[dict[str, _Series]]:
    """Per bucket of ``buckets`` (sorted, the last the latest there is), each variant's
    data up to its end, reduced to what the cumulative comparison reads: count, sum and
    sum of squares (numeric: :func:`_from_moments`) or count and ones (boolean). One
    pass over the rows, whatever the number of buckets."""
    if metric.moments is not None:
        cols = list(zip(*metric.moments, strict=True)) or [(), (), (), (), ()]
        variant, bucket = np.array(cols[0], dtype=object), np.array(cols[1], dtype=object)
        sums = np.array(cols[2:5], dtype=float).reshape(3, -1).T
    else:
        variant, bucket, value, count = _columns(metric)
        if metric.kind == "boolean":
            value = (value >= 0.5).astype(float)
        sums = np.stack([count, count * value, count * value * value], axis=1)
    # Each row counts from the first point at or after its bucket (labels compared as
    # integers: their rank among the buckets there are).
    rank = {b: i for i, b in enumerate(sorted(set(bucket.tolist())))}
    ranks = np.fromiter((rank[b] for b in bucket.tolist()), dtype=np.int64, count=len(bucket))
    at = np.searchsorted(np.array([rank[b] for b in buckets], dtype=np.int64), ranks)
    running = {}
    for v in variants:
        mask = variant == v
        acc = np.zeros((len(buckets), 3))
        np.add.at(acc, at[mask], sums[mask])
        running[v] = np.cumsum(acc, axis=0)
    out = []
    for i in range(len(buckets)):
        point = {}
        for v in variants:
            n, total, squares = running[v][i]
            if metric.kind == "boolean":
                counts = np.array([n - total, total])
                keep = counts > 0
                point[v] = _Series(np.array([0.0, 1.0])[keep], counts[keep])
            else:
                point[v] = _from_moments(n, total, squares)
        out.append(point)
    return out


@_quiet
def cumulative(
    metric: MetricRows, variants: Sequence[str], control: str, alpha: float
) -> list[dict[str, Any]]:
    """Per time bucket, each variant's difference against the control over all traces
    up to the end of that bucket, with its interval (numeric and boolean metrics)."""
    if metric.kind == "categorical":
        return []
    out = []
    buckets = _buckets(metric)
    for bucket, series in zip(buckets, _running(metric, variants, buckets), strict=True):
        point: dict[str, Any] = {"bucket": bucket, "variants": {}}
        for v in variants:
            if v == control:
                continue
            cmp = _compare(metric.kind, series[v], series[control], alpha, robust=False)
            point["variants"][v] = {
                "n": series[v].n,
                "controlN": series[control].n,
                "difference": cmp.get("difference"),
                "ciLow": cmp.get("ciLow"),
                "ciHigh": cmp.get("ciHigh"),
            }
        out.append(point)
    return out


def distribution(metric: MetricRows, variants: Sequence[str]) -> dict[str, Any]:
    """Per variant, the share of traces per value (at most 30 distinct values) or per
    bin of 20 common bins (numeric metrics with more values)."""
    if metric.moments is not None:
        return {}
    series = _split(metric, variants)
    if metric.kind != "numeric":
        return {
            v: {"x": [str(x) for x in s.values], "share": list(s.counts / max(s.n, 1))}
            for v, s in series.items()
        }
    distinct = {x for s in series.values() for x in s.values.tolist()}
    if len(distinct) <= 30:
        return {
            v: {"x": s.values.tolist(), "share": (s.counts / max(s.n, 1)).tolist()}
            for v, s in series.items()
        }
    edges = np.histogram_bin_edges(sorted(distinct), bins=20)
    out = {}
    for v, s in series.items():
        hist, _ = np.histogram(s.values, bins=edges, weights=s.counts)
        mids = (edges[:-1] + edges[1:]) / 2
        out[v] = {"x": mids.tolist(), "share": (hist / max(s.n, 1)).tolist()}
    return out


@_quiet
def analyse(
    metric: MetricRows, variants: Sequence[str], control: str, alpha: float
) -> dict[str, Any]:
    """One metric: per variant its summary, the comparison against the control (Holm
    adjusted when more than one variant is compared)."""
    series = _split(metric, variants)
    per = {v: _summary(metric.kind, series[v], alpha) for v in variants}
    others = [v for v in variants if v != control]
    robust = metric.moments is None
    comparisons = {
        v: _compare(metric.kind, series[v], series[control], alpha, robust) for v in others
    }
    adjusted = holm([comparisons[v].get("pValue") for v in others], alpha)
    for v, q in zip(others, adjusted, strict=True):
        comparisons[v]["pAdjusted"] = q if len(others) > 1 else comparisons[v].get("pValue")
        comparisons[v]["significant"] = q is not None and q < alpha
    return {
        "metric": metric.name,
        "kind": metric.kind,
        "lowerIsBetter": metric.name in LOWER_IS_BETTER,
        "variants": per,
        "comparisons": comparisons,
        "correction": "holm" if len(others) > 1 else None,
    }


def operational(ops: Operational, variants: Sequence[str]) -> dict[str, Any]:
    """Cost, latency and error rate per variant."""
    out = {}
    for v in variants:
        n = ops.traces.get(v, 0)
        out[v] = {
            "traces": n,
            "units": ops.units.get(v, 0),
            "totalCost": _f(ops.cost.get(v, 0.0)),
            "meanCost": _f(ops.cost.get(v, 0.0) / n) if n else None,
            "meanLatency": _f(ops.latency.get(v)),
            "errorRate": ops.errors.get(v, 0) / n if n else None,
        }
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _relative(new: float | None, base: float | None) -> str | None:
    if new is None or not base:
        return None
    return f"{(new - base) / base * 100:+.0f} %"


def verdict(
    primary: dict[str, Any],
    control: str,
    ops: dict[str, Any],
    srm_check: dict[str, Any] | None,
    needed: dict[str, int | None],
) -> dict[str, Any]:
    """The plain-language verdict: per compared variant a sentence, and an overall
    ``status`` (``srm``, ``insufficient``, ``winner``, ``loser``, ``no_difference``)."""
    lines = []
    status = "no_difference"
    best: str | None = None
    if srm_check and srm_check.get("mismatch"):
        lines.append(
            f"Sample ratio mismatch ({_p(srm_check.get('pValue'))}): the units per variant"
            " differ from the weights, so assignment or logging is broken; do not trust"
            " this result until it is fixed."
        )
        status = "srm"
    name = primary["metric"]
    lower = primary["lowerIsBetter"]
    for v, cmp in primary["comparisons"].items():
        n_v = primary["variants"][v]["n"]
        n_c = primary["variants"][control]["n"]
        p = cmp.get("pAdjusted")
        if p is None:
            lines.append(f"Not enough data yet to compare {v} with {control} on {name}.")
            if status == "no_difference":
                status = "insufficient"
            continue
        cost = _relative(ops.get(v, {}).get("meanCost"), ops.get(control, {}).get("meanCost"))
        tail = f"; cost {cost}" if cost else ""
        diff = cmp.get("difference")
        interval = (
            f"by {_num(abs(diff))} (95 % CI {_num(cmp.get('ciLow'))} to {_num(cmp.get('ciHigh'))},"
            f" {_p(p)})"
            if diff is not None
            else f"({_p(p)})"
        )
        if cmp["significant"] and diff is not None:
            better = (diff < 0) if lower else (diff > 0)
            word = "beats" if better else "is worse than"
            lines.append(f"{v} {word} {control} on {name} {interval}{tail}.")
            if better and status not in ("srm",):
                status, best = "winner", v
            elif status == "no_difference":
                status = "loser"
        elif cmp["significant"]:
            lines.append(f"{v} differs from {control} on {name} {interval}{tail}.")
        else:
            more = needed.get(v)
            extra = ""
            if more is not None:
                left = max(more - min(n_v, n_c), 0)
                extra = (
                    f"; about {left:,} more traces per variant are needed to detect the"
                    " minimum detectable effect"
                    if left
                    else "; the sample is large enough for the minimum detectable effect,"
                    " so a difference of that size is unlikely"
                )
            lines.append(
                f"No significant difference between {v} and {control} on {name}"
                f" (difference {_num(diff)}, 95 % CI {_num(cmp.get('ciLow'))} to"
                f" {_num(cmp.get('ciHigh'))}, {_p(p)}){tail}{extra}."
            )
    return {"status": status, "winner": best, "text": " ".join(lines)}
