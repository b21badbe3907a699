// Paired comparisons at a few seeds (ohem/paired.hpp) against scipy fixtures
// (tests/data/generate_paired_fixtures.py: scipy.stats.ttest_rel / t.interval / t.ppf / nct, exact
// enumeration of the sign patterns in rational arithmetic, Holm from the textbook) and hand derivations.
#include "support.hpp"

#include <ohem/paired.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace {

const nlohmann::json& fixtures() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(OHEM_TEST_DATA_DIR) + "/paired/expected.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return j;
}

double rel_err(double got, double want) {
  if (got == want) return 0.0;  // also equal infinities
  return want == 0 ? std::abs(got) : std::abs(got - want) / std::abs(want);
}

// Counts the extreme sign patterns one by one (the test's own enumeration, n <= 20), with the tie rule of
// ohem/paired.hpp: |Σ s_i d_i| >= |Σ d_i| − 1e-12 · Σ|d_i|.
uint64_t brute_force_sign_flip(const std::vector<double>& d) {
  const size_t n = d.size();
  double observed = 0, scale = 0;
  for (double v : d) observed += v, scale += std::abs(v);
  const double threshold = std::abs(observed) - ohem::kSignFlipTieTolerance * scale;
  uint64_t count = 0;
  for (uint64_t pattern = 0; pattern < (uint64_t{1} << n); ++pattern) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += (pattern >> i & 1) ? -d[i] : d[i];
    count += std::abs(s) >= threshold;
  }
  return count;
}

}  // namespace

TEST_CASE("paired_t_test agrees with scipy.stats.ttest_rel and t.interval", "[paired]") {
  double worst_moment = 0, worst_p = 0, worst_quantile = 0, worst_interval = 0;
  for (const auto& c : fixtures().at("t_tests")) {
    const std::string name = c.at("name");
    INFO("case " << name);
    const auto options = ohem::PairedTTestOptions().confidence(c.at("confidence").get<double>());
    const ohem::PairedTTest r =
        c.contains("a") ? ohem::paired_t_test(c.at("a").get<std::vector<double>>(),
                                              c.at("b").get<std::vector<double>>(), options)
                        : ohem::paired_t_test(c.at("differences").get<std::vector<double>>(), options);
    CHECK(r.n == c.at("n").get<int64_t>());
    CHECK(r.df == c.at("df").get<double>());
    CHECK(r.confidence == c.at("confidence").get<double>());
    for (const auto& [key, got] :
         {std::pair<const char*, double>{"mean", r.mean}, {"sd", r.sd}, {"se", r.se}, {"t", r.t}}) {
      const double e = rel_err(got, c.at(key).get<double>());
      INFO(key << " " << got << " vs scipy " << c.at(key).get<double>());
      CHECK(e <= 1e-12);
      worst_moment = std::max(worst_moment, e);
    }
    const double ep = rel_err(r.p_value, c.at("p_value").get<double>());
    INFO("p " << r.p_value << " vs scipy " << c.at("p_value").get<double>());
    CHECK(ep <= 1e-10);
    worst_p = std::max(worst_p, ep);
    const double eq = rel_err(r.t_critical, c.at("t_critical").get<double>());
    CHECK(eq <= 1e-12);
    worst_quantile = std::max(worst_quantile, eq);
    // The endpoints relative to the interval's half-width (an endpoint may be near 0).
    const double half = c.at("upper").get<double>() - c.at("mean").get<double>();
    for (const auto& [got, want] : {std::pair<double, double>{r.lower, c.at("lower").get<double>()},
                                    {r.upper, c.at("upper").get<double>()}}) {
      const double e = std::abs(got - want) / half;
      INFO("endpoint " << got << " vs scipy " << want);
      CHECK(e <= 1e-12);
      worst_interval = std::max(worst_interval, e);
    }
    CHECK(r.lower <= r.mean);
    CHECK(r.mean <= r.upper);
  }
  std::printf(
      "paired_t_test vs scipy: max relative deviation mean/sd/se/t %.3g, p %.3g, t quantile %.3g, "
      "endpoints (of the half-width) %.3g\n",
      worst_moment, worst_p, worst_quantile, worst_interval);
}

TEST_CASE("Student's t distribution function and quantiles agree with scipy.stats.t at extreme arguments",
          "[paired]") {
  double worst = 0;
  for (const auto& row : fixtures().at("t_distribution")) {
    const double df = row.at("df"), x = row.at("x"), want = row.at("value");
    const bool is_cdf = row.at("kind") == "cdf";
    // ppf(q) is the two-sided quantile at alpha = 2 (1 − q); 1 − q is exact for q in [1/2, 1].
    const double got = is_cdf ? ohem::detail::student_t_cdf(x, df)
                              : ohem::detail::student_t_two_sided_quantile(2.0 * (1.0 - x), df);
    INFO((is_cdf ? "cdf(" : "ppf(") << x << ", df " << df << ") = " << got << " vs scipy " << want);
    const double e = rel_err(got, want);
    CHECK(e <= 1e-12);
    worst = std::max(worst, e);
  }
  const double pi = std::acos(-1.0);
  // Closed forms for df = 1 (Cauchy) and df = 2: F(t) = 1/2 + atan(t)/π, and t_q = (2q − 1) √(2 / (4q(1 −
  // q))).
  CHECK(rel_err(ohem::detail::student_t_cdf(-3.0, 1), 0.5 - std::atan(3.0) / pi) <= 1e-14);
  CHECK(rel_err(ohem::detail::student_t_two_sided_quantile(0.01, 1), std::tan(pi * 0.495)) <= 1e-13);
  CHECK(rel_err(ohem::detail::student_t_two_sided_quantile(0.05, 2),
                0.95 * std::sqrt(2.0 / (4 * 0.975 * 0.025))) <= 1e-14);
  std::printf("Student's t vs scipy: max relative deviation %.3g\n", worst);
}

TEST_CASE("paired_t_test: equal differences give a degenerate interval, the overloads agree", "[paired]") {
  SECTION("all differences equal and non-zero: [d, d], t = ±inf, p = 0") {
    const auto r = ohem::paired_t_test(std::vector<double>{0.25, 0.25, 0.25, 0.25});
    CHECK(r.sd == 0);
    CHECK(r.se == 0);
    CHECK(r.mean == 0.25);
    CHECK(r.lower == 0.25);
    CHECK(r.upper == 0.25);
    CHECK(r.t == std::numeric_limits<double>::infinity());
    CHECK(r.p_value == 0);
    const auto neg = ohem::paired_t_test(std::vector<double>{-3, -3});
    CHECK(neg.t == -std::numeric_limits<double>::infinity());
    CHECK(neg.lower == -3);
    CHECK(neg.upper == -3);
  }
  SECTION("all differences 0: [0, 0], t = 0, p = 1") {
    const std::vector<double> a{0.81, 0.79, 0.8};
    const auto r = ohem::paired_t_test(a, a);
    CHECK(r.mean == 0);
    CHECK(r.lower == 0);
    CHECK(r.upper == 0);
    CHECK(r.t == 0);
    CHECK(r.p_value == 1);
  }
  SECTION("hand derivation: d = (1, 2, 3), n = 3") {
    // mean 2, sd 1, se 1/√3, t = 2√3, df 2: P(|T_2| >= t) = 1 − t/√(2 + t²) = 1 − 2√3/√14.
    const auto r = ohem::paired_t_test(std::vector<double>{1, 2, 3});
    CHECK(r.mean == Approx(2.0).epsilon(1e-15));
    CHECK(r.sd == Approx(1.0).epsilon(1e-15));
    CHECK(rel_err(r.t, 2 * std::sqrt(3.0)) <= 1e-14);
    CHECK(rel_err(r.p_value, 1 - 2 * std::sqrt(3.0) / std::sqrt(14.0)) <= 1e-13);
  }
  SECTION("a, b and a − b, and a tensor, give the same result") {
    const std::vector<double> a{0.81, 0.79, 0.84, 0.8, 0.77}, b{0.8, 0.8, 0.82, 0.79, 0.76};
    std::vector<double> d;
    for (size_t i = 0; i < a.size(); ++i) d.push_back(a[i] - b[i]);
    const auto x = ohem::paired_t_test(a, b), y = ohem::paired_t_test(d);
    const auto z = ohem::paired_t_test(torch::tensor(a, torch::kDouble), torch::tensor(b, torch::kDouble));
    for (const auto& r : {y, z}) {
      CHECK(r.mean == x.mean);
      CHECK(r.sd == x.sd);
      CHECK(r.p_value == x.p_value);
      CHECK(r.lower == x.lower);
      CHECK(r.upper == x.upper);
    }
    // A wider confidence level gives a wider interval around the same mean.
    const auto wide = ohem::paired_t_test(d, ohem::PairedTTestOptions().confidence(0.99));
    CHECK(wide.lower < x.lower);
    CHECK(wide.upper > x.upper);
  }
}

TEST_CASE("paired_t_test refuses what it cannot compute, naming the argument and value", "[paired]") {
  const std::vector<double> a{0.8, 0.81, 0.79}, b{0.8, 0.8};
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(ohem::paired_t_test(a, b), Catch::Contains("a has 3 values but b has 2"));
  CHECK_THROWS_WITH(ohem::paired_t_test(std::vector<double>{0.8}, std::vector<double>{0.7}),
                    Catch::Contains("needs at least 2 pairs, got 1 value(s) in a"));
  CHECK_THROWS_WITH(ohem::paired_t_test(std::vector<double>{0.1}),
                    Catch::Contains("got 1 value(s) in differences"));
  CHECK_THROWS_WITH(ohem::paired_t_test(std::vector<double>{0.8, nan}, b), Catch::Contains("a[1] is nan"));
  CHECK_THROWS_WITH(ohem::paired_t_test(b, std::vector<double>{inf, 0.8}), Catch::Contains("b[0] is inf"));
  CHECK_THROWS_WITH(ohem::paired_t_test(std::vector<double>{1e308, 0}, std::vector<double>{-1e308, 0}),
                    Catch::Contains("a[0] - b[0] = 1e+308 - -1e+308 overflows"));
  for (double level : {0.0, 1.0, 1.5, -0.95, nan}) {
    CHECK_THROWS_WITH(ohem::paired_t_test(a, a, ohem::PairedTTestOptions().confidence(level)),
                      Catch::Contains("confidence must be in (0, 1), got"));
  }
  CHECK_THROWS_WITH(ohem::paired_t_test(a, ohem::PairedTTestOptions().confidence(95)),
                    Catch::Contains("confidence must be in (0, 1), got 95"));
}

TEST_CASE("sign_flip_test agrees with exact enumeration in rational arithmetic", "[paired]") {
  for (const auto& c : fixtures().at("sign_flip")) {
    const std::string name = c.at("name");
    INFO("case " << name);
    const auto d = c.at("differences").get<std::vector<double>>();
    const auto r = ohem::sign_flip_test(d);
    CHECK(r.n == static_cast<int64_t>(d.size()));
    CHECK(r.patterns == c.at("patterns").get<uint64_t>());
    CHECK(r.extreme_patterns == c.at("extreme_patterns").get<uint64_t>());
    CHECK(r.p_value == c.at("p_value").get<double>());
  }
}

TEST_CASE("sign_flip_test: hand derivations, ties, scale, the bound on n", "[paired]") {
  // Five differences of one sign: only the observed pattern and its mirror are as extreme.
  const auto five = ohem::sign_flip_test(std::vector<double>{0.012, 0.004, 0.020, 0.007, 0.015});
  CHECK(five.extreme_patterns == 2);
  CHECK(five.patterns == 32);
  CHECK(five.p_value == 0.0625);
  // a − b with a > b at every seed: the same.
  CHECK(ohem::sign_flip_test(std::vector<double>{0.9, 0.8, 0.85, 0.7, 0.75},
                             std::vector<double>{0.8, 0.7, 0.8, 0.6, 0.7})
            .p_value == 0.0625);
  // (1, 1, 1, 1): |sum| = 4 only for ±(1, 1, 1, 1): 2/16. (1, 1, −1): every pattern has |sum| >= 1: p = 1.
  CHECK(ohem::sign_flip_test(std::vector<double>{1, 1, 1, 1}).p_value == 0.125);
  CHECK(ohem::sign_flip_test(std::vector<double>{1, 1, -1}).p_value == 1.0);
  // Observed mean 0 or every difference 0: p = 1.
  CHECK(ohem::sign_flip_test(std::vector<double>{1, -1}).p_value == 1.0);
  CHECK(ohem::sign_flip_test(std::vector<double>{0, 0, 0}).p_value == 1.0);
  // (3, 1, 2): sums ±6, ±4 (flip 1), ±2 (flip 2), 0 (flip 3): |sum| >= 6 for 2 of 8.
  CHECK(ohem::sign_flip_test(std::vector<double>{3, 1, 2}).extreme_patterns == 2);
  // Decimal ties count although the doubles differ in the last bits: (0.1, 0.2, −0.3) sums to ~5.6e-17;
  // every pattern's |sum| is at least that (a tie with 0, within the tolerance), so p = 1.
  CHECK(ohem::sign_flip_test(std::vector<double>{0.1, 0.2, -0.3}).p_value == 1.0);
  // (0.1, 0.2, −0.3, 0.5): t = ±0.1 ± 0.2 ∓ 0.3 is 0 for 2 patterns (then both signs of 0.5 give |sum| = 0.5)
  // and non-zero for 6 (then only the sign of 0.5 that agrees with t does): 2·2 + 6 = 10 of 16. As doubles
  // 0.1 + 0.2 − 0.3 = 2.8e-17, so without the tie rule one sign of 0.5 would fall short: 8.
  CHECK(ohem::sign_flip_test(std::vector<double>{0.1, 0.2, -0.3, 0.5}).extreme_patterns == 10);
  // (0.1, 0.2, 0.3): |sum| 0.6 only for ±all; −0.1 − 0.2 + 0.3 is ~0, not a tie.
  CHECK(ohem::sign_flip_test(std::vector<double>{0.1, 0.2, 0.3}).extreme_patterns == 2);
  // Scale does not matter: the values are scaled by powers of two before summing.
  const std::vector<double> base{0.013, -0.002, 0.021, 0.007, -0.011, 0.009, 0.004};
  std::vector<double> huge, tiny;
  for (double v : base) huge.push_back(v * 1e300), tiny.push_back(v * 1e-300);
  const auto want = ohem::sign_flip_test(base).extreme_patterns;
  CHECK(want == brute_force_sign_flip(base));
  CHECK(ohem::sign_flip_test(huge).extreme_patterns == want);
  CHECK(ohem::sign_flip_test(tiny).extreme_patterns == want);
  // The meet-in-the-middle count equals the one-by-one enumeration for n = 2 ... 16.
  uint64_t state = 7;
  for (int n = 2; n <= 16; ++n) {
    std::vector<double> d;
    for (int i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      d.push_back(static_cast<double>(static_cast<int64_t>(state >> 40) - (1 << 23)) / (1 << 23) + 0.1);
    }
    INFO("n " << n);
    CHECK(ohem::sign_flip_test(d).extreme_patterns == brute_force_sign_flip(d));
  }
  // n = 40, the bound: (1, ..., 40) sums to 820 and any flip lowers |sum| by at least 2: p = 2 / 2^40.
  std::vector<double> forty;
  for (int i = 1; i <= 40; ++i) forty.push_back(i);
  const auto start = std::chrono::steady_clock::now();
  const auto r40 = ohem::sign_flip_test(forty);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(r40.extreme_patterns == 2);
  CHECK(r40.patterns == (uint64_t{1} << 40));
  CHECK(r40.p_value == std::ldexp(1.0, -39));
  std::printf("sign_flip_test with 40 pairs (2^40 patterns): %.2f s\n", seconds);
  forty.push_back(41);
  CHECK_THROWS_WITH(ohem::sign_flip_test(forty), Catch::Contains("accepts at most 40 pairs, got 41"));
  CHECK_THROWS_WITH(ohem::sign_flip_test(std::vector<double>{1.0}),
                    Catch::Contains("needs at least 2 pairs"));
  CHECK_THROWS_WITH(ohem::sign_flip_test(std::vector<double>{1.0, std::nan("")}),
                    Catch::Contains("differences[1] is nan"));
  CHECK_THROWS_WITH(ohem::sign_flip_test(std::vector<double>{1, 2}, std::vector<double>{1}),
                    Catch::Contains("a has 2 values but b has 1"));
}

TEST_CASE("holm_adjust agrees with the textbook and a hand example", "[paired]") {
  for (const auto& c : fixtures().at("holm")) {
    const auto p = c.at("p_values").get<std::vector<double>>(),
               want = c.at("adjusted").get<std::vector<double>>();
    const auto got = ohem::holm_adjust(p);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("p " << p[i] << " adjusted " << got[i] << " vs " << want[i]);
      CHECK(rel_err(got[i], want[i]) <= 1e-15);
      CHECK(got[i] >= p[i]);
      CHECK(got[i] <= 1.0);
      // Monotone: a smaller p-value never gets a larger adjusted one.
      for (size_t j = 0; j < got.size(); ++j) {
        if (p[j] <= p[i]) CHECK(got[j] <= got[i]);
      }
    }
  }
  // Hand: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 → running max 0.03, 0.06, 0.06.
  const auto hand = ohem::holm_adjust({0.01, 0.04, 0.03});
  CHECK(hand[0] == Approx(0.03).epsilon(1e-15));
  CHECK(hand[1] == Approx(0.06).epsilon(1e-15));
  CHECK(hand[2] == Approx(0.06).epsilon(1e-15));
  CHECK(ohem::holm_adjust({0.4, 0.7}) == std::vector<double>{0.8, 0.8});
  CHECK(ohem::holm_adjust({}).empty());
  CHECK_THROWS_WITH(ohem::holm_adjust({0.1, std::nan("")}), Catch::Contains("p_values[1] is nan"));
  CHECK_THROWS_WITH(ohem::holm_adjust({1.5}),
                    Catch::Contains("p_values[0] is 1.5; p-values must be in [0, 1]"));
  CHECK_THROWS_WITH(ohem::holm_adjust({-0.1}), Catch::Contains("p_values[0] is -0.1"));
}

TEST_CASE("paired_t_power and minimum_detectable_effect agree with scipy.stats.nct", "[paired]") {
  double worst_power = 0, worst_mde = 0;
  for (const auto& c : fixtures().at("power")) {
    const double got = ohem::paired_t_power(c.at("n"), c.at("effect"), c.at("sd"), c.at("alpha"));
    const double want = c.at("power");
    INFO("n " << c.at("n") << " effect " << c.at("effect") << ": power " << got << " vs scipy " << want);
    const double e = rel_err(got, want);
    CHECK(e <= 1e-10);
    worst_power = std::max(worst_power, e);
  }
  for (const auto& c : fixtures().at("mde")) {
    const auto options = ohem::DetectableEffectOptions().power(c.at("power")).alpha(c.at("alpha"));
    const int64_t n = c.at("n");
    const double sd = c.at("sd");
    const double got = ohem::minimum_detectable_effect(n, sd, options), want = c.at("mde");
    INFO("n " << n << " sd " << sd << ": mde " << got << " vs scipy " << want);
    const double e = rel_err(got, want);
    CHECK(e <= 1e-10);
    worst_mde = std::max(worst_mde, e);
    // At that effect the power is the target.
    CHECK(std::abs(ohem::paired_t_power(n, got, sd, options.alpha()) - options.power()) <= 1e-12);
  }
  std::printf("power / minimum detectable effect vs scipy.stats.nct: max relative deviation %.3g / %.3g\n",
              worst_power, worst_mde);
}

TEST_CASE("paired_t_power and minimum_detectable_effect: limits and errors", "[paired]") {
  // Zero effect: the test rejects at its level. Zero spread: any non-zero effect is detected.
  CHECK(rel_err(ohem::paired_t_power(6, 0.0, 0.01), 0.05) <= 1e-13);
  CHECK(ohem::paired_t_power(6, 0.01, 0.0) == 1.0);
  CHECK(ohem::paired_t_power(6, 0.0, 0.0) == 0.05);
  // Far beyond the critical value the power is 1 without summing the series (λ = 10^6 here).
  CHECK(ohem::paired_t_power(100, 1e4, 100.0) == 1.0);
  CHECK(ohem::minimum_detectable_effect(6, 0.0) == 0.0);
  // Linear in the s.d.; more pairs detect smaller effects.
  CHECK(rel_err(ohem::minimum_detectable_effect(6, 0.02), 2 * ohem::minimum_detectable_effect(6, 0.01)) <=
        1e-14);
  CHECK(ohem::minimum_detectable_effect(10, 0.01) < ohem::minimum_detectable_effect(6, 0.01));
  // Large n: close to the normal approximation (z_{0.975} + z_{0.8}) sd / √n = 2.8016 sd / √n.
  CHECK(ohem::minimum_detectable_effect(2000, 1.0) * std::sqrt(2000.0) == Approx(2.80159).epsilon(2e-3));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(1, 0.01),
                    Catch::Contains("needs at least 2 pairs, got n = 1"));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(5, -0.01),
                    Catch::Contains("sd must be finite and >= 0, got -0.01"));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(5, std::nan("")), Catch::Contains("sd must be finite"));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(5, 0.01, ohem::DetectableEffectOptions().power(0.04)),
                    Catch::Contains("power must be in (alpha, 1) = (0.05, 1), got 0.04"));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(5, 0.01, ohem::DetectableEffectOptions().power(1.0)),
                    Catch::Contains("power must be in (alpha, 1)"));
  CHECK_THROWS_WITH(ohem::minimum_detectable_effect(5, 0.01, ohem::DetectableEffectOptions().alpha(0)),
                    Catch::Contains("alpha must be in (0, 1), got 0"));
  CHECK_THROWS_WITH(ohem::paired_t_power(5, 0.01, 0.01, 1.0),
                    Catch::Contains("alpha must be in (0, 1), got 1"));
  CHECK_THROWS_WITH(ohem::paired_t_power(5, std::nan(""), 0.01), Catch::Contains("effect must be finite"));
  CHECK_THROWS_WITH(ohem::paired_t_power(5, 1e300, 1e-300), Catch::Contains("overflows a double"));
}
