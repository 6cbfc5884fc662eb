"""The A/B readout's statistics equal scipy's (and statsmodels') results computed here
directly on the raw values, for data with a known effect and with none; over 500
simulated null experiments the false-positive rate at alpha 0.05 is close to 5 %."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from lanterna.abtests import stats

ALPHA = 0.05


def rows_of(data: dict[str, np.ndarray], hours: int = 3) -> list[tuple[str, str, float, int]]:
    """The grouped rows the store returns for raw values (spread over a few hours)."""
    out: dict[tuple[str, str, float], int] = {}
    for variant, values in data.items():
        for i, value in enumerate(values):
            key = (variant, f"2026-01-01T0{i % hours}", float(value))
            out[key] = out.get(key, 0) + 1
    return [(v, h, x, n) for (v, h, x), n in out.items()]


@pytest.mark.parametrize("effect", [0.0, 0.3])
def test_numeric_readout_equals_scipy_welch_and_mann_whitney(effect):
    rng = np.random.default_rng(7)
    a = np.round(rng.normal(3.5, 1.0, 400), 1)
    b = np.round(rng.normal(3.5 + effect, 1.2, 380), 1)
    got = stats.analyse(
        stats.MetricRows("user_rating", "numeric", rows_of({"A": a, "B": b})),
        ["A", "B"],
        "A",
        ALPHA,
    )
    cmp = got["comparisons"]["B"]
    welch = sps.ttest_ind(b, a, equal_var=False)
    ci = welch.confidence_interval(0.95)
    mw = sps.mannwhitneyu(b, a, alternative="two-sided")
    assert cmp["pValue"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert cmp["statistic"] == pytest.approx(welch.statistic, rel=1e-9)
    assert cmp["difference"] == pytest.approx(b.mean() - a.mean(), abs=1e-12)
    assert (cmp["ciLow"], cmp["ciHigh"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert cmp["mannWhitneyP"] == pytest.approx(mw.pvalue, rel=1e-9)
    assert cmp["mannWhitneyU"] == pytest.approx(mw.statistic)
    mean_ci = sps.ttest_1samp(a, 0).confidence_interval(0.95)
    va = got["variants"]["A"]
    assert va["n"] == 400 and va["mean"] == pytest.approx(a.mean())
    assert (va["ciLow"], va["ciHigh"]) == pytest.approx((mean_ci.low, mean_ci.high), rel=1e-9)
    assert cmp["significant"] == (effect > 0)


def test_boolean_readout_equals_the_two_proportion_z_test():
    rng = np.random.default_rng(3)
    a = (rng.random(1000) < 0.20).astype(float)
    b = (rng.random(900) < 0.26).astype(float)
    got = stats.analyse(
        stats.MetricRows("converted", "boolean", rows_of({"A": a, "B": b})), ["A", "B"], "A", ALPHA
    )
    cmp = got["comparisons"]["B"]
    # The pooled two-proportion z-test squared is the uncorrected 2x2 chi-square.
    table = [[b.sum(), len(b) - b.sum()], [a.sum(), len(a) - a.sum()]]
    chi = sps.chi2_contingency(table, correction=False)
    assert cmp["pValue"] == pytest.approx(chi.pvalue, rel=1e-9)
    assert cmp["statistic"] ** 2 == pytest.approx(chi.statistic, rel=1e-9)
    assert cmp["difference"] == pytest.approx(b.mean() - a.mean())
    se = np.sqrt(a.mean() * (1 - a.mean()) / len(a) + b.mean() * (1 - b.mean()) / len(b))
    z = sps.norm.ppf(0.975)
    assert (cmp["ciLow"], cmp["ciHigh"]) == pytest.approx(
        (b.mean() - a.mean() - z * se, b.mean() - a.mean() + z * se), rel=1e-9
    )


def test_cumulative_effect_equals_scipy_on_the_data_up_to_each_point():
    """Each point of the cumulative chart is Welch's interval (numeric) or the Wald
    interval of the difference of proportions (boolean) over the values up to it."""
    rng = np.random.default_rng(11)
    hours = 9
    a = np.round(rng.normal(3.5, 1.0, 300), 1)
    b = np.round(rng.normal(3.8, 1.2, 280), 1)

    def upto(values: np.ndarray, hour: int) -> np.ndarray:  # rows_of puts value i in i % hours
        return values[np.arange(len(values)) % hours <= hour]

    numeric = stats.cumulative(
        stats.MetricRows("r", "numeric", rows_of({"A": a, "B": b}, hours)), ["A", "B"], "A", ALPHA
    )
    assert [p["bucket"] for p in numeric] == [f"2026-01-01T0{h}" for h in range(hours)]
    for h, point in enumerate(numeric):
        got, pa, pb = point["variants"]["B"], upto(a, h), upto(b, h)
        ci = sps.ttest_ind(pb, pa, equal_var=False).confidence_interval(0.95)
        assert (got["n"], got["controlN"]) == (len(pb), len(pa))
        assert got["difference"] == pytest.approx(pb.mean() - pa.mean(), rel=1e-9)
        assert (got["ciLow"], got["ciHigh"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    a01, b01 = (a > 3.5).astype(float), (b > 3.5).astype(float)
    boolean = stats.cumulative(
        stats.MetricRows("c", "boolean", rows_of({"A": a01, "B": b01}, hours)),
        ["A", "B"],
        "A",
        ALPHA,
    )
    for h, point in enumerate(boolean):
        got, pa, pb = point["variants"]["B"], upto(a01, h), upto(b01, h)
        diff = pb.mean() - pa.mean()
        se = np.sqrt(pa.mean() * (1 - pa.mean()) / len(pa) + pb.mean() * (1 - pb.mean()) / len(pb))
        z = sps.norm.ppf(0.975)
        assert got["difference"] == pytest.approx(diff, rel=1e-9)
        assert (got["ciLow"], got["ciHigh"]) == pytest.approx((diff - z * se, diff + z * se))


def test_categorical_readout_equals_scipy_chi_square():
    rng = np.random.default_rng(5)
    a = rng.choice(["good", "ok", "bad"], 500, p=[0.5, 0.3, 0.2])
    b = rng.choice(["good", "ok", "bad"], 500, p=[0.4, 0.3, 0.3])
    rows = [
        (v, "h", str(x), int(n))
        for v, arr in (("A", a), ("B", b))
        for x, n in zip(*np.unique(arr, return_counts=True), strict=True)
    ]
    got = stats.analyse(stats.MetricRows("label", "categorical", rows), ["A", "B"], "A", ALPHA)
    cats = ["bad", "good", "ok"]
    table = [[int((b == c).sum()) for c in cats], [int((a == c).sum()) for c in cats]]
    chi = sps.chi2_contingency(table, correction=False)
    assert got["comparisons"]["B"]["pValue"] == pytest.approx(chi.pvalue, rel=1e-9)
    assert got["variants"]["B"]["categories"] == dict(zip(cats, table[0], strict=True))


def test_three_variants_are_holm_corrected_and_srm_is_scipys_chisquare():
    rng = np.random.default_rng(11)
    data = {v: rng.normal(m, 1, 300) for v, m in (("A", 0), ("B", 0.1), ("C", 0.3))}
    got = stats.analyse(stats.MetricRows("x", "numeric", rows_of(data)), list(data), "A", ALPHA)
    raw = [sps.ttest_ind(data[v], data["A"], equal_var=False).pvalue for v in ("B", "C")]
    holm = multipletests(raw, alpha=ALPHA, method="holm")[1]
    assert [got["comparisons"][v]["pAdjusted"] for v in ("B", "C")] == pytest.approx(holm)
    assert got["correction"] == "holm"
    check = stats.srm({"A": 5200, "B": 4800}, {"A": 50, "B": 50})
    assert check["pValue"] == pytest.approx(sps.chisquare([5200, 4800]).pvalue)
    assert check["mismatch"] is True
    assert stats.srm({"A": 5030, "B": 4970}, {"A": 1, "B": 1})["mismatch"] is False


def test_verdict_names_winner_interval_p_and_cost():
    rng = np.random.default_rng(1)
    a, b = rng.normal(3.5, 1, 2000), rng.normal(3.8, 1, 2000)
    primary = stats.analyse(
        stats.MetricRows("user_rating", "numeric", rows_of({"A": a, "B": b})),
        ["A", "B"],
        "A",
        ALPHA,
    )
    ops = {"A": {"meanCost": 0.010}, "B": {"meanCost": 0.0108}}
    out = stats.verdict(primary, "A", ops, None, {"B": None})
    assert out["status"] == "winner" and out["winner"] == "B"
    print(out["text"])
    assert out["text"].startswith("B beats A on user_rating by 0.")
    assert "95 % CI" in out["text"] and "p < 0.001" in out["text"] and "cost +8 %" in out["text"]


def test_sample_size_matches_statsmodels_power():
    from statsmodels.stats.power import TTestIndPower

    need = stats.sample_size("numeric", {"mean": 3.5, "std": 1.0}, 0.1, 0.05, 1.0)
    expected = TTestIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=1)
    assert need == int(np.ceil(expected))


def test_false_positive_rate_of_500_null_experiments_is_about_alpha():
    rng = np.random.default_rng(2026)
    hits = 0
    for _ in range(500):
        a, b = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
        got = stats.analyse(
            stats.MetricRows("m", "numeric", rows_of({"A": a, "B": b}, 1)), ["A", "B"], "A", ALPHA
        )
        hits += got["comparisons"]["B"]["pValue"] < ALPHA
    rate = hits / 500
    print(f"false-positive rate over 500 null experiments at alpha 0.05: {rate:.3f}")
    assert 0.03 <= rate <= 0.07
