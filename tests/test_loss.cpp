// Tests of the BIQA task losses, the OHEM loss functor and the hardness tracker. Every expected value is
// computed here by hand (scalar loops over std::erf / std::sqrt), never by the code under test.
#include "support.hpp"

#include <ohem/hardness.hpp>
#include <ohem/ohem_loss.hpp>
#include <ohem/task_losses.hpp>

#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using ohem_test::close;
using ohem_test::read_file;

torch::Tensor vec(std::vector<double> v) {
  return torch::tensor(v, torch::kDouble);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// The recipe's formulas, written out per element.
double prob(double mu1, double mu2, double var1, double var2) {
  return 0.5 * (1.0 + std::erf((mu1 - mu2) / std::sqrt(2.0 * (var1 + var2 + 1e-8))));
}
double fidelity(double p, double g) {
  return 1.0 - std::sqrt(p * g + 1e-8) - std::sqrt((1.0 - p) * (1.0 - g) + 1e-8);
}

}  // namespace

TEST_CASE("pair_probability is the recipe's erf formula with a detached variance", "[loss][biqa]") {
  const std::vector<double> m1{0.3, -1.2, 2.0, 0.0}, m2{0.1, 0.4, -0.5, 0.0}, v1{1.0, 0.5, 2.0, 0.0},
      v2{1.0, 0.25, 0.1, 0.0};
  auto mu1 = vec(m1).requires_grad_(), mu2 = vec(m2).reshape({4, 1}).requires_grad_();
  auto var1 = vec(v1).requires_grad_(), var2 = vec(v2).requires_grad_();
  auto p = ohem::pair_probability(mu1, mu2, var1, var2);
  std::vector<double> expected;
  for (size_t i = 0; i < 4; ++i) expected.push_back(prob(m1[i], m2[i], v1[i], v2[i]));
  REQUIRE(p.sizes() == torch::IntArrayRef{4});
  CHECK(close(p, vec(expected), 0, 1e-12));

  // Fixed σ² = 1 (the recipe's BaseCNN).
  auto p1 = ohem::pair_probability(mu1, mu2);
  std::vector<double> e1;
  for (size_t i = 0; i < 4; ++i) e1.push_back(prob(m1[i], m2[i], 1.0, 1.0));
  CHECK(close(p1, vec(e1), 0, 1e-12));

  // The gradient reaches μ but not σ²: dp/dμ1 = φ(z)/sqrt(2v)·sqrt(2)... written as the erf derivative.
  p.sum().backward();
  CHECK_FALSE(var1.grad().defined());
  CHECK_FALSE(var2.grad().defined());
  std::vector<double> dmu1;
  for (size_t i = 0; i < 4; ++i) {
    const double s = std::sqrt(2.0 * (v1[i] + v2[i] + 1e-8));
    const double z = (m1[i] - m2[i]) / s;
    dmu1.push_back(0.5 * 2.0 / std::sqrt(M_PI) * std::exp(-z * z) / s);
  }
  CHECK(close(mu1.grad(), vec(dmu1), 1e-9, 1e-12));
  CHECK(close(mu2.grad().reshape({-1}), -vec(dmu1), 1e-9, 1e-12));
}

TEST_CASE("thurstone_probability is Phi((mos1-mos2)/sqrt(std1^2+std2^2)) and carries no gradient",
          "[loss][biqa]") {
  const std::vector<double> a{60, 40, 55, 50}, sa{10, 5, 0, 0}, b{50, 45, 50, 50}, sb{8, 5, 0, 0};
  auto mos1 = vec(a).requires_grad_();
  auto g = ohem::thurstone_probability(mos1, vec(sa), vec(b), vec(sb));
  std::vector<double> expected;
  for (size_t i = 0; i < 4; ++i) {
    // Phi(x) = 0.5·erfc(−x/√2); with the 1e-8 guard inside the variance.
    const double x = (a[i] - b[i]) / std::sqrt(sa[i] * sa[i] + sb[i] * sb[i] + 1e-8);
    expected.push_back(0.5 * std::erfc(-x / std::sqrt(2.0)));
  }
  CHECK(close(g, vec(expected), 0, 1e-12));
  CHECK(g[3].item<double>() == 0.5);  // equal MOS, zero std
  CHECK_FALSE(g.requires_grad());
}

TEST_CASE("fidelity_loss matches the recipe formula for binary and probability labels", "[loss][biqa]") {
  const std::vector<double> p{0.9, 0.2, 0.5, 1.0, 0.0}, gb{1, 0, 1, 1, 1}, gp{0.7, 0.1, 0.5, 0.99, 0.3};
  for (const auto& g : {gb, gp}) {
    std::vector<double> per;
    for (size_t i = 0; i < p.size(); ++i) per.push_back(fidelity(p[i], g[i]));
    double sum = 0;
    for (double x : per) sum += x;
    CHECK(ohem::fidelity_loss(vec(p), vec(g)).item<double>() == Approx(mean(per)).margin(1e-14));
    CHECK(ohem::fidelity_loss(vec(p).reshape({5, 1}), vec(g), torch::kSum).item<double>() ==
          Approx(sum).margin(1e-13));
    CHECK(close(ohem::fidelity_loss(vec(p), vec(g), torch::kNone), vec(per), 0, 1e-14));
  }
  // A perfect prediction of a binary label costs ≈ 0 (only the 1e-8 terms remain).
  CHECK(ohem::fidelity_loss(vec({1.0}), vec({1.0})).item<double>() ==
        Approx(1.0 - std::sqrt(1.0 + 1e-8) - 1e-4).margin(1e-15));
  CHECK_THROWS_WITH(ohem::fidelity_loss(vec({0.5, 0.5}), vec({1.0})),
                    Catch::Contains("p and g") && Catch::Contains("2 and 1"));
}

TEST_CASE("PairwiseFidelityLoss composes probability and fidelity (float32 and float64)", "[loss][biqa]") {
  const std::vector<double> m1{0.5, -0.3, 1.1}, m2{0.2, 0.6, 1.0}, g{1, 0, 0.6};
  double expected = 0;
  for (size_t i = 0; i < 3; ++i) expected += fidelity(prob(m1[i], m2[i], 1, 1), g[i]) / 3.0;
  ohem::PairwiseFidelityLoss loss;
  CHECK(loss(std::make_pair(vec(m1), vec(m2)), vec(g)).item<double>() == Approx(expected).margin(1e-12));
  auto f32 =
      loss(vec(m1).to(torch::kFloat).reshape({3, 1}), vec(m2).to(torch::kFloat).reshape({3, 1}), vec(g));
  CHECK(f32.scalar_type() == torch::kFloat);
  CHECK(f32.item<double>() == Approx(expected).margin(1e-6));

  double e2 = 0;
  for (size_t i = 0; i < 3; ++i) e2 += fidelity(prob(m1[i], m2[i], 0.25, 0.25), g[i]);
  ohem::PairwiseFidelityLoss sum_loss(
      ohem::PairwiseFidelityLossOptions().variance(0.25).reduction(torch::kSum));
  CHECK(sum_loss(vec(m1), vec(m2), vec(g)).item<double>() == Approx(e2).margin(1e-12));
  CHECK_THROWS_WITH(ohem::PairwiseFidelityLoss(ohem::PairwiseFidelityLossOptions().variance(-1)),
                    Catch::Contains("variance") && Catch::Contains("-1"));
}

TEST_CASE("MOS losses, PLCC loss and margin ranking match hand computations", "[loss][biqa]") {
  const std::vector<double> pr{3.0, 2.5, 4.0, 1.0}, mos{3.2, 2.0, 4.5, 1.5};
  std::vector<double> l1, l2;
  for (size_t i = 0; i < 4; ++i) {
    l1.push_back(std::abs(pr[i] - mos[i]));
    l2.push_back((pr[i] - mos[i]) * (pr[i] - mos[i]));
  }
  // [B, 1] against [B] must not broadcast to [B, B].
  CHECK(ohem::mos_l1_loss(vec(pr).reshape({4, 1}), vec(mos)).item<double>() ==
        Approx(mean(l1)).margin(1e-14));
  CHECK(ohem::mos_mse_loss(vec(pr).reshape({4, 1}), vec(mos)).item<double>() ==
        Approx(mean(l2)).margin(1e-14));
  CHECK(ohem::MosL1Loss{}(vec(pr), vec(mos)).item<double>() == Approx(mean(l1)).margin(1e-14));
  CHECK(close(ohem::mos_mse_loss(vec(pr), vec(mos), torch::kNone), vec(l2), 0, 1e-14));
  CHECK_THROWS_WITH(ohem::mos_l1_loss(vec(pr).reshape({2, 2}), vec(mos)),
                    Catch::Contains("pred") && Catch::Contains("[2, 2]"));

  // PLCC: centred inner product over the product of norms (+1e-8).
  const double mp = mean(pr), mm = mean(mos);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < 4; ++i) {
    sab += (pr[i] - mp) * (mos[i] - mm);
    saa += (pr[i] - mp) * (pr[i] - mp);
    sbb += (mos[i] - mm) * (mos[i] - mm);
  }
  const double rho = sab / (std::sqrt(saa) * std::sqrt(sbb) + 1e-8);
  CHECK(ohem::plcc_loss(vec(pr), vec(mos)).item<double>() == Approx((1 - rho) / 2).margin(1e-14));
  CHECK(ohem::PlccLoss{}(vec(mos) * 3 + 1, vec(mos)).item<double>() == Approx(0.0).margin(1e-9));
  CHECK(ohem::plcc_loss(-vec(mos), vec(mos)).item<double>() == Approx(1.0).margin(1e-9));
  // Batch size 1: zero loss, zero gradient, backward works.
  auto one = vec({2.0}).requires_grad_();
  auto l = ohem::plcc_loss(one, vec({3.0}));
  CHECK(l.item<double>() == 0.0);
  l.backward();
  CHECK(one.grad().item<double>() == 0.0);
  // Constant batch: finite, ρ = 0.
  CHECK(ohem::plcc_loss(vec({1.0, 1.0, 1.0}), vec({1.0, 2.0, 3.0})).item<double>() ==
        Approx(0.5).margin(1e-12));

  // Margin ranking: max(0, margin − (2g − 1)(μ1 − μ2)).
  const std::vector<double> a{0.5, 0.1, 0.3}, b{0.2, 0.4, 0.3}, g{1, 1, 0.75};
  double rank = 0;
  for (size_t i = 0; i < 3; ++i) rank += std::max(0.0, 0.2 - (2 * g[i] - 1) * (a[i] - b[i])) / 3.0;
  CHECK(ohem::margin_ranking_loss(vec(a), vec(b), vec(g), 0.2).item<double>() == Approx(rank).margin(1e-14));
  CHECK(ohem::MarginRankingPairLoss(ohem::MarginRankingPairLossOptions().margin(0.2))(
            std::make_pair(vec(a), vec(b)), vec(g))
            .item<double>() == Approx(rank).margin(1e-14));
  // Binary labels: torch's own margin ranking loss with y = 2g − 1 agrees.
  auto gb = vec({1, 0, 1});
  CHECK(ohem::margin_ranking_loss(vec(a), vec(b), gb, 0.1).item<double>() ==
        Approx(torch::margin_ranking_loss(vec(a), vec(b), 2 * gb - 1, 0.1).item<double>()).margin(1e-14));
}

TEST_CASE("OhemLoss on tensors: total, parts and hardness by hand, defaults are the recipe", "[loss]") {
  // Predictions [B=3, 2] so that hardness averages over a non-batch dimension.
  auto full = vec({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}).reshape({3, 2}).requires_grad_();
  auto twin = vec({1.5, 1.0, 3.0, 3.0, 4.0, 8.0}).reshape({3, 2}).requires_grad_();
  auto target = vec({1.0, 1.0, 3.0, 5.0, 5.0, 5.0}).reshape({3, 2});
  auto task = [](const torch::Tensor& p, const torch::Tensor& y) { return (p - y).abs().mean(); };
  ohem::OhemLoss loss(task);
  CHECK(loss.options().alpha() == 1.0);
  CHECK(loss.options().lambda() == 1.0);
  CHECK(loss.options().consistency() == ohem::Consistency::MSE);
  CHECK_FALSE(loss.options().detach_full());
  auto r = loss(full, twin, target);

  const std::vector<double> f{1, 2, 3, 4, 5, 6}, t{1.5, 1, 3, 3, 4, 8}, y{1, 1, 3, 5, 5, 5};
  double tf = 0, tt = 0, c = 0;
  for (size_t i = 0; i < 6; ++i) {
    tf += std::abs(f[i] - y[i]) / 6;
    tt += std::abs(t[i] - y[i]) / 6;
    c += (f[i] - t[i]) * (f[i] - t[i]) / 6;
  }
  CHECK(r.task_full.item<double>() == Approx(tf).margin(1e-14));
  CHECK(r.task_twin.item<double>() == Approx(tt).margin(1e-14));
  CHECK(r.consistency.item<double>() == Approx(c).margin(1e-14));
  CHECK(r.total.item<double>() == Approx(tf + tt + c).margin(1e-14));
  CHECK(r.task_sum.item<double>() == Approx(tf + tt).margin(1e-14));
  REQUIRE(r.full_prediction.size() == 1);
  REQUIRE(r.twin_predictions.size() == 1);
  CHECK(ohem_test::bit_identical(r.full_prediction[0], full.detach()));
  CHECK(ohem_test::bit_identical(r.twin_predictions[0][0], twin.detach()));
  CHECK_FALSE(r.full_prediction[0].requires_grad());
  CHECK(close(r.hardness, vec({(0.5 + 1.0) / 2, (0.0 + 1.0) / 2, (1.0 + 2.0) / 2}), 0, 1e-14));
  REQUIRE(r.member_hardness.size() == 1);
  CHECK_FALSE(r.hardness.requires_grad());
  CHECK_FALSE(r.task_full.requires_grad());

  // Gradients of the total: d/df = sign(f−y)/6 + 2(f−t)/6; d/dt = sign(t−y)/6 − 2(f−t)/6.
  r.backward();
  std::vector<double> gf, gt;
  auto sgn = [](double v) { return static_cast<double>((v > 0) - (v < 0)); };
  for (size_t i = 0; i < 6; ++i) {
    gf.push_back(sgn(f[i] - y[i]) / 6 + 2 * (f[i] - t[i]) / 6);
    gt.push_back(sgn(t[i] - y[i]) / 6 - 2 * (f[i] - t[i]) / 6);
  }
  CHECK(close(full.grad().reshape({-1}), vec(gf), 0, 1e-14));
  CHECK(close(twin.grad().reshape({-1}), vec(gt), 0, 1e-14));
}

TEST_CASE("OhemLoss options: alpha, lambda, L1, detach_full, reductions", "[loss]") {
  auto f = vec({0.0, 1.0, 3.0, 2.0}).reshape({2, 2});
  auto t = vec({1.0, 1.0, 1.0, 0.0}).reshape({2, 2});
  auto y = torch::zeros({2, 2}, torch::kDouble);
  auto task = [](const torch::Tensor& p, const torch::Tensor& target) {
    return (p - target).square().mean();
  };
  const double tf = (0 + 1 + 9 + 4) / 4.0, tt = (1 + 1 + 1 + 0) / 4.0;

  SECTION("alpha, lambda and L1 consistency") {
    ohem::OhemLoss loss(task,
                        ohem::OhemLossOptions().alpha(0.5).lambda(2.0).consistency(ohem::Consistency::L1));
    auto r = loss(f, t, y);
    const double c = (1 + 0 + 2 + 2) / 4.0;
    CHECK(r.consistency.item<double>() == Approx(c).margin(1e-14));
    CHECK(r.total.item<double>() == Approx(tf + 0.5 * tt + 2.0 * c).margin(1e-14));
  }
  SECTION("Sum and None reductions of the consistency") {
    ohem::OhemLoss sum(task, ohem::OhemLossOptions().reduction(torch::kSum));
    CHECK(sum(f, t, y).consistency.item<double>() == Approx(1 + 0 + 4 + 4).margin(1e-14));
    ohem::OhemLoss none(task, ohem::OhemLossOptions().reduction(torch::kNone));
    auto r = none(f, t, y);
    CHECK(close(r.consistency, vec({0.5, 4.0}), 0, 1e-14));
    CHECK(close(r.total, vec({tf + tt + 0.5, tf + tt + 4.0}), 0, 1e-14));
    // A non-scalar total needs the gradient argument, as Tensor::backward.
    auto fg = f.clone().requires_grad_();
    auto rg = none(fg, t, y);
    CHECK_THROWS(rg.backward());
    rg.backward(vec({1.0, 0.0}));
    // d/df of tf (all samples) + consistency of sample 0 only: 2f/4 + [2(f−t)/2, 0].
    CHECK(close(fg.grad(), vec({0.0 + -1.0, 0.5 + 0.0, 1.5 + 0.0, 1.0 + 0.0}).reshape({2, 2}), 0, 1e-14));
  }
  SECTION("detach_full stops the consistency gradient on the full side only") {
    ohem::OhemLoss loss(task, ohem::OhemLossOptions().detach_full(true));
    auto fg = f.clone().requires_grad_(), tg = t.clone().requires_grad_();
    auto r = loss(fg, tg, y);
    r.backward();
    CHECK(close(fg.grad(), 2 * f / 4, 0, 1e-14));                    // task only
    CHECK(close(tg.grad(), 2 * t / 4 - 2 * (f - t) / 4, 0, 1e-14));  // task + consistency
  }
  SECTION("invalid options") {
    CHECK_THROWS_WITH(ohem::OhemLoss(task, ohem::OhemLossOptions().alpha(-1)),
                      Catch::Contains("alpha") && Catch::Contains("-1"));
    CHECK_THROWS_WITH(ohem::OhemLoss(task, ohem::OhemLossOptions().lambda(NAN)), Catch::Contains("lambda"));
    ohem::OhemLoss loss(task);
    CHECK_THROWS_WITH(loss(f, t.reshape({4}), y), Catch::Contains("member 0") && Catch::Contains("[2, 2]"));
    CHECK_THROWS_WITH(loss(f, std::vector<torch::Tensor>{}, y), Catch::Contains("empty"));
  }
}

TEST_CASE("OhemLoss pairwise recipe case needs no glue: fidelity on both + MSE per member", "[loss][biqa]") {
  const std::vector<double> f1{0.4, 1.2, -0.3}, f2{0.1, 1.5, 0.2}, t1{0.35, 1.0, -0.1}, t2{0.2, 1.6, 0.0},
      g{1, 0, 0};
  auto full = std::make_pair(vec(f1).reshape({3, 1}), vec(f2).reshape({3, 1}));
  auto twin = std::make_pair(vec(t1).reshape({3, 1}), vec(t2).reshape({3, 1}));
  ohem::OhemLoss loss(ohem::PairwiseFidelityLoss{});
  auto r = loss(full, twin, vec(g));

  double fid_f = 0, fid_t = 0, mse1 = 0, mse2 = 0;
  std::vector<double> h1, h2;
  for (size_t i = 0; i < 3; ++i) {
    fid_f += fidelity(prob(f1[i], f2[i], 1, 1), g[i]) / 3;
    fid_t += fidelity(prob(t1[i], t2[i], 1, 1), g[i]) / 3;
    mse1 += (f1[i] - t1[i]) * (f1[i] - t1[i]) / 3;
    mse2 += (f2[i] - t2[i]) * (f2[i] - t2[i]) / 3;
    h1.push_back(std::abs(f1[i] - t1[i]));
    h2.push_back(std::abs(f2[i] - t2[i]));
  }
  CHECK(r.total.item<double>() == Approx(fid_f + fid_t + mse1 + mse2).margin(1e-14));
  CHECK(r.consistency.item<double>() == Approx(mse1 + mse2).margin(1e-14));
  REQUIRE(r.member_hardness.size() == 2);
  CHECK(close(r.member_hardness[0], vec(h1), 0, 1e-14));
  CHECK(close(r.member_hardness[1], vec(h2), 0, 1e-14));
  CHECK(close(r.hardness, (vec(h1) + vec(h2)) / 2, 0, 1e-14));

  // The same through a 2-tuple and through margin ranking.
  auto rt =
      loss.consistency(std::make_tuple(full.first, full.second), std::make_tuple(twin.first, twin.second));
  CHECK(rt.item<double>() == Approx(mse1 + mse2).margin(1e-14));
}

TEST_CASE("OhemLoss with a torch::nn loss module and an ensemble of twins", "[loss]") {
  torch::nn::MSELoss mse;
  ohem::OhemLoss loss(mse);
  auto f = vec({1.0, 2.0}), y = vec({0.0, 0.0});
  std::vector<torch::Tensor> twins{vec({1.0, 0.0}), vec({3.0, 2.0})};
  auto r = loss(f, twins, y);
  const double tf = (1 + 4) / 2.0, tt = ((1 + 0) / 2.0 + (9 + 4) / 2.0) / 2,
               c = ((0 + 4) / 2.0 + (4 + 0) / 2.0) / 2;
  CHECK(r.task_twin.item<double>() == Approx(tt).margin(1e-14));
  CHECK(r.consistency.item<double>() == Approx(c).margin(1e-14));
  CHECK(r.total.item<double>() == Approx(tf + tt + c).margin(1e-14));
  CHECK(close(r.hardness, vec({(0 + 2) / 2.0, (2 + 0) / 2.0}), 0, 1e-14));
  // One twin in a vector is exactly the single-twin call.
  auto one = loss(f, std::vector<torch::Tensor>{twins[0]}, y);
  auto single = loss(f, twins[0], y);
  CHECK(ohem_test::bit_identical(one.total, single.total));
}

TEST_CASE("HardnessTracker: mean, EMA, growth, top-k", "[hardness]") {
  ohem::HardnessTracker mean_tracker(4);
  mean_tracker.update(torch::tensor({0, 2, 2}), vec({1.0, 3.0, 5.0}));
  mean_tracker.update(torch::tensor({0, 6}, torch::kInt), vec({2.0, 0.5}).to(torch::kFloat));
  CHECK(mean_tracker.size() == 7);
  CHECK(mean_tracker.hardness(0) == Approx(1.5).margin(1e-12));
  CHECK(mean_tracker.hardness(2) == Approx(4.0).margin(1e-12));
  CHECK(mean_tracker.count(2) == 2);
  CHECK(mean_tracker.hardness(6) == Approx(0.5).margin(1e-12));
  CHECK(std::isnan(mean_tracker.hardness(1)));
  CHECK(std::isnan(mean_tracker.values()[3].item<double>()));
  auto top = mean_tracker.top_k(2);
  REQUIRE(top.size() == 2);
  CHECK(top[0].index == 2);
  CHECK(top[1].index == 0);
  CHECK(mean_tracker.top_k(10).size() == 3);
  mean_tracker.reset();
  CHECK(mean_tracker.top_k(10).empty());

  ohem::HardnessTracker ema(
      0, ohem::HardnessTrackerOptions().average(ohem::HardnessAverage::EMA).momentum(0.75));
  ema.update(torch::tensor({1}), vec({4.0}));
  ema.update(torch::tensor({1}), vec({0.0}));
  ema.update(torch::tensor({1}), vec({8.0}));
  // 4 → 0.75·4 + 0.25·0 = 3 → 0.75·3 + 0.25·8 = 4.25
  CHECK(ema.hardness(1) == Approx(4.25).margin(1e-12));

  CHECK_THROWS_WITH(mean_tracker.update(torch::tensor({-1}), vec({1.0})), Catch::Contains("-1"));
  CHECK_THROWS_WITH(mean_tracker.update(torch::tensor({1, 2}), vec({1.0})), Catch::Contains("2 elements"));
  CHECK_THROWS_WITH(mean_tracker.update(vec({1.0}), vec({1.0})), Catch::Contains("integer"));
  CHECK_THROWS_WITH(mean_tracker.update(torch::tensor({1}), vec({NAN})), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(ohem::HardnessTracker(0, ohem::HardnessTrackerOptions().momentum(1.0)),
                    Catch::Contains("momentum"));
}

TEST_CASE("HardnessTracker CSV export: hardest first, quoted names, atomic", "[hardness]") {
  ohem::HardnessTracker tracker(3);
  tracker.update(torch::tensor({0, 1, 2}), vec({0.25, 0.5, 0.125}));
  const std::string path = ohem_test::temp_path("hardness.csv");
  tracker.save_csv(path, {"a.png", "b,\"x\".png"}, {3.5, NAN, 1.0});
  CHECK(read_file(path) ==
        "index,name,hardness,mos\n"
        "1,\"b,\"\"x\"\".png\",0.5,\n"
        "0,a.png,0.25,3.5\n"
        "2,,0.125,1\n");
  // Overwrites atomically; no temporary left behind.
  tracker.update(torch::tensor({2}), vec({0.875}));
  tracker.save_csv(path);
  CHECK(read_file(path) == "index,name,hardness,mos\n1,,0.5,\n2,,0.5,\n0,,0.25,\n");
  const auto dir = std::filesystem::path(path).parent_path();
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    CHECK(e.path().filename().string().rfind(std::filesystem::path(path).filename().string() + ".tmp", 0) !=
          0);
  }
  CHECK_THROWS_WITH(tracker.save_csv("/nonexistent-dir/x.csv"), Catch::Contains("/nonexistent-dir/x.csv"));
}
