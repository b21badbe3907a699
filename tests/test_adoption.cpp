// Adoption tests: ohem dropped into training code written the way LibTorch's own C++ examples are (a
// module held by value, SGD, NLL, a Linear-only regression looping until the loss is small), one test
// per case of issue 24, and concurrent use (issue 27). Expected values come from the plain LibTorch
// computation or from hand formulas.
#include "support.hpp"

#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// LibTorch's MNIST example network, scaled down: a module held by value with registered submodules.
struct Net : torch::nn::Module {
  Net() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 8, 3)));
    fc1 = register_module("fc1", torch::nn::Linear(8 * 2 * 2, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(torch::max_pool2d(conv1->forward(x), 2));  // 10 -> 8 -> 4
    x = torch::relu(conv2->forward(x));                        // 4 -> 2
    x = x.view({-1, 8 * 2 * 2});
    x = torch::relu(fc1->forward(x));
    return torch::log_softmax(fc2->forward(x), /*dim=*/1);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

torch::Tensor free_nll(const torch::Tensor& prediction, const torch::Tensor& target) {
  return torch::nll_loss(prediction, target);
}

// Collects LibTorch warnings (TORCH_WARN) while alive (the handler API changed in LibTorch 2).
struct WarningCollector : c10::WarningHandler {
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override {
    messages.push_back(warning.msg());
  }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
#endif
  std::vector<std::string> messages;
};

struct CollectWarnings {
#if TORCH_VERSION_MAJOR >= 2
  CollectWarnings() : previous(c10::WarningUtils::get_warning_handler()) {
    c10::WarningUtils::set_warning_handler(&collector);
  }
  ~CollectWarnings() {
    c10::WarningUtils::set_warning_handler(previous);
  }
#else
  CollectWarnings() : previous(c10::Warning::get_warning_handler()) {
    c10::Warning::set_warning_handler(&collector);
  }
  ~CollectWarnings() {
    c10::Warning::set_warning_handler(previous);
  }
#endif
  CollectWarnings(const CollectWarnings&) = delete;
  CollectWarnings& operator=(const CollectWarnings&) = delete;
  c10::WarningHandler* previous;
  WarningCollector collector;
};

// The message of the c10::Error that `f` throws ("" if it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("adoption 1: a module held by value, as LibTorch's examples hold it", "[adoption]") {
  torch::manual_seed(0);
  Net model;
  // The one-line change: the SelfCompetitor refers to `model` (no copy, no ownership).
  ohem::SelfCompetitor ohem_net(model, torch::nn::NLLLoss());
  ohem::PrunedTwin twin(model);
  CHECK(&ohem_net.module() == &model);
  CHECK(&twin.module() == &model);
  // The twin masks the registered parameters themselves: the optimizer built on model.parameters() trains
  // them.
  const auto params = model.named_parameters();
  for (const auto& slot : ohem_net.twin().slots()) CHECK(slot.parameter.is_same(params[slot.name]));
  CHECK(ohem_net.twin().slots().size() == 2);  // the two convolutions (the recipe's layer kinds)

  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  auto x = torch::randn({6, 1, 10, 10});
  auto y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  const torch::Tensor before = model.fc2->weight.detach().clone();
  optimizer.zero_grad();
  ohem::OhemLossResult r = ohem_net(x, y);
  r.total.backward();
  optimizer.step();
  CHECK_FALSE(torch::equal(before, model.fc2->weight.detach()));
  // The twin's forward equals the model's forward with the masked weights written in by hand.
  torch::NoGradGuard no_grad;
  auto expected_twin = [&] {
    std::vector<torch::Tensor> saved;
    for (const auto& slot : twin.slots()) saved.push_back(slot.parameter.detach().clone());
    for (const auto& slot : twin.slots()) slot.parameter.mul_(twin.masks().at(slot.name));
    torch::Tensor out = model.forward(x);
    for (size_t i = 0; i < saved.size(); ++i) twin.slots()[i].parameter.copy_(saved[i]);
    return out;
  }();
  CHECK(ohem_test::close(twin.forward(x), expected_twin, 0.0, 1e-6));
}

TEST_CASE("adoption 1: a by-value module gives the same losses as the same module behind a shared_ptr",
          "[adoption]") {
  torch::manual_seed(1);
  auto owned = std::make_shared<Net>();
  Net& by_value = *owned;  // the same object, reached both ways
  auto x = torch::randn({4, 1, 10, 10});
  auto y = torch::tensor({2, 0, 1, 1}, torch::kLong);
  ohem::SelfCompetitor via_pointer(owned, torch::nn::NLLLoss());
  const long owners = owned.use_count();
  ohem::SelfCompetitor via_reference(by_value, torch::nn::NLLLoss());
  CHECK(owned.use_count() == owners);  // the reference neither owns nor copies
  const auto a = via_pointer(x, y);
  const auto b = via_reference(x, y);
  CHECK(ohem_test::bit_identical(a.total.detach(), b.total.detach()));
  CHECK(ohem_test::bit_identical(a.hardness, b.hardness));
}

TEST_CASE("adoption 2: a model without convolutions names the option that masks its layers", "[adoption]") {
  torch::nn::Linear model(4, 1);
  const std::string message = error_of([&] { ohem::SelfCompetitor sc(model, torch::nn::MSELoss()); });
  INFO(message);
  CHECK(contains(message, "no prunable weight found"));
  CHECK(contains(message, "1 Linear layer"));
  CHECK(contains(message, "SelfCompetitorOptions().layers(ohem::LayerKind::All)"));
  CHECK(contains(message, "TwinOptions().layers(ohem::LayerKind::All)"));

  ohem::SelfCompetitorOptions options;
  options.layers(ohem::LayerKind::All).twin().thin_layers().action(ohem::ThinLayerAction::Ignore);
  CHECK(options.layers() == ohem::LayerKind::All);
  CHECK(options.twin().slots().kinds() == ohem::LayerKind::All);
  ohem::SelfCompetitor sc(model, torch::nn::MSELoss(), options);
  REQUIRE(sc.twin().slots().size() == 1);
  CHECK(sc.twin().slots()[0].name == "weight");
}

TEST_CASE("adoption 3: masks that leave a layer thin are reported, and refused on request", "[adoption]") {
  torch::manual_seed(2);
  torch::nn::Linear model(4, 1);
  {
    CollectWarnings warnings;
    ohem::PrunedTwin twin(model, ohem::TwinOptions().layers(ohem::LayerKind::All));
    // ratio 0.65 of 4 weights: ceil(2.6) = 3 pruned, 1 kept, and the one output unit keeps 1 < 2.
    REQUIRE(twin.thin_layers().size() == 1);
    const ohem::ThinLayer& t = twin.thin_layers()[0];
    CHECK(t.name == "weight");
    CHECK(t.numel == 4);
    CHECK(t.kept == 1);
    CHECK(t.units == 1);
    CHECK(t.thin_units == 1);
    CHECK(t.fewest == 1);
    REQUIRE(warnings.collector.messages.size() == 1);
    const std::string& w = warnings.collector.messages[0];
    INFO(w);
    CHECK(contains(w, "weight keeps 1 of 4 weights (25.0 %)"));
    CHECK(contains(w, "1 of 1 output units keep fewer than 2"));
  }
  {
    const std::string message = error_of([&] {
      ohem::PrunedTwin twin(model,
                            ohem::TwinOptions()
                                .layers(ohem::LayerKind::All)
                                .thin_layers(ohem::ThinLayerOptions().action(ohem::ThinLayerAction::Refuse)));
    });
    INFO(message);
    CHECK(contains(message, "ThinLayerAction::Refuse"));
    CHECK(contains(message, "weight keeps 1 of 4 weights"));
  }
  {
    // A layer keeping more than the thresholds is not reported: Linear(16, 8) at ratio 0.5 keeps 64 of 128.
    CollectWarnings warnings;
    torch::nn::Linear wide(16, 8);
    ohem::PrunedTwin twin(wide, ohem::TwinOptions()
                                    .layers(ohem::LayerKind::All)
                                    .masks(ohem::MaskOptions().ratio(0.5))
                                    .thin_layers(ohem::ThinLayerOptions().min_unit_weights(1)));
    CHECK(twin.masks().kept() == 64);
    CHECK(twin.masks().at("weight").sum(1).min().item<int64_t>() >= 1);
    CHECK(twin.thin_layers().empty());
    CHECK(warnings.collector.messages.empty());
  }
}

TEST_CASE("adoption 3: a non-finite loss is an error naming the branch and part", "[adoption]") {
  ohem::OhemLoss<torch::nn::MSELoss> loss(torch::nn::MSELoss{});
  auto full = torch::tensor({{0.5}, {1.0}});
  auto twin = torch::tensor({{0.5}, {std::numeric_limits<double>::infinity()}}, torch::kFloat);
  auto mos = torch::tensor({{0.4}, {0.9}});
  std::string message = error_of([&] { loss(full, twin, mos); });
  INFO(message);
  CHECK(contains(message, "twin 0's prediction member 0 (1 of 2 values not finite)"));
  CHECK(contains(message, "task(twin)"));
  CHECK(contains(message, "consistency"));
  CHECK_FALSE(contains(message, "task(full)"));
  CHECK(contains(message, "check_finite(false)"));
  // Turned off, the infinite total flows out.
  ohem::OhemLoss<torch::nn::MSELoss> unchecked(torch::nn::MSELoss{},
                                               ohem::OhemLossOptions().check_finite(false));
  CHECK(std::isinf(unchecked(full, twin, mos).total.item<float>()));

  // The pairwise fidelity loss saturates at an infinite score (a finite loss, zero gradient): the check on
  // the predictions still names it.
  ohem::OhemLoss<ohem::PairwiseFidelityLoss> pairwise(ohem::PairwiseFidelityLoss{});
  auto mu1 = torch::tensor({std::numeric_limits<float>::infinity(), 0.2f});
  auto mu2 = torch::tensor({0.1f, 0.3f});
  auto g = torch::tensor({1.0f, 0.0f});
  message = error_of([&] { pairwise(std::make_pair(mu1, mu2), std::make_pair(mu1, mu2), g); });
  INFO(message);
  CHECK(contains(message, "the full model's prediction member 0"));
  CHECK(contains(message, "twin 0's prediction member 0"));

  // On its own, the fidelity loss of an infinite score is NaN, not a finite loss with a zero gradient.
  const auto alone = ohem::PairwiseFidelityLoss{}(std::make_pair(mu1, mu2), g);
  CHECK(std::isnan(alone.item<float>()));
  // Finite scores are unchanged: the recipe's formula by hand.
  const double p0 = 0.5 * (1.0 + std::erf((0.2 - 0.3) / std::sqrt(2.0 * (2.0 + 1e-8))));
  const double expected = 1.0 - std::sqrt(p0 * 0.0 + 1e-8) - std::sqrt((1.0 - p0) * 1.0 + 1e-8);
  const auto finite = ohem::PairwiseFidelityLoss{}(std::make_pair(mu1.narrow(0, 1, 1), mu2.narrow(0, 1, 1)),
                                                   g.narrow(0, 1, 1));
  CHECK(finite.item<float>() == Approx(expected).epsilon(1e-6));

  // An empty batch gets its own message.
  message = error_of([&] { loss(torch::zeros({0, 1}), torch::zeros({0, 1}), torch::zeros({0, 1})); });
  CHECK(contains(message, "empty batch"));
}

TEST_CASE("adoption 3: LibTorch's regression loop with OHEM stops or ends, never spins on inf",
          "[adoption]") {
  // LibTorch's regression example: fit a degree-4 polynomial with one Linear layer and SGD until the loss
  // falls under 1e-3. With every layer masked, the twin of Linear(4, 1) keeps one weight; the loop must
  // either converge or stop with an error, never run on a non-finite loss.
  torch::manual_seed(3);
  const auto w_target = torch::randn({4, 1}) * 5;
  const auto b_target = torch::randn({1}) * 5;
  auto make_features = [](const torch::Tensor& x) {
    return torch::cat({x, x.pow(2), x.pow(3), x.pow(4)}, 1);
  };
  torch::nn::Linear fc(4, 1);
  ohem::SelfCompetitor sc(
      fc, torch::nn::SmoothL1Loss(),
      ohem::SelfCompetitorOptions()
          .layers(ohem::LayerKind::All)
          .twin(ohem::TwinOptions()
                    .layers(ohem::LayerKind::All)
                    .thin_layers(ohem::ThinLayerOptions().action(ohem::ThinLayerAction::Ignore))));
  torch::optim::SGD optim(fc->parameters(), 0.1);
  double task = 0;
  int64_t step = 0;
  std::string error;
  try {
    for (step = 0; step < 2000; ++step) {
      auto x = torch::randn({32, 1});
      auto features = make_features(x);
      auto target = features.mm(w_target) + b_target.item<float>();
      optim.zero_grad();
      auto r = sc(features, target);
      task = r.task.item<double>();
      r.total.backward();
      optim.step();
      if (task < 1e-3) break;
    }
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  }
  INFO("step " << step << ", task " << task << ", error: " << error);
  CHECK(std::isfinite(task));
  CHECK((error.empty() || contains(error, "not finite")));
  CHECK(step < 2000);
}

TEST_CASE("adoption 4: r.task is the full model's task loss, what the loop without OHEM computes",
          "[adoption]") {
  torch::manual_seed(4);
  Net model;
  auto x = torch::randn({5, 1, 10, 10});
  auto y = torch::tensor({0, 2, 1, 1, 0}, torch::kLong);
  ohem::SelfCompetitor sc(model, torch::nn::NLLLoss());
  const auto r = sc(x, y);
  torch::Tensor plain;
  {
    torch::NoGradGuard no_grad;
    plain = torch::nll_loss(model.forward(x), y);
  }
  CHECK(ohem_test::close(r.task, plain, 0.0, 1e-6));
  CHECK(r.task_full.is_same(r.task));
  CHECK_FALSE(r.task.requires_grad());
  // total = task + task(twin) + consistency (α = λ = 1): not the number to log.
  CHECK(ohem_test::close(r.total.detach(), r.task + r.task_twin + r.consistency, 0.0, 1e-6));
}

TEST_CASE("adoption 5: KL and SoftmaxMSE consistencies for classifiers, by hand", "[adoption][loss]") {
  // Two samples, three classes; the predictions are logits.
  const double f[2][3] = {{2.0, 0.5, -1.0}, {0.0, 0.0, 0.3}};
  const double t[2][3] = {{1.0, 1.5, -0.5}, {0.2, -0.4, 0.1}};
  double kl[2], mse_sum = 0, l1[2];
  for (int i = 0; i < 2; ++i) {
    double zf = 0, zt = 0;
    for (int c = 0; c < 3; ++c) {
      zf += std::exp(f[i][c]);
      zt += std::exp(t[i][c]);
    }
    kl[i] = 0;
    l1[i] = 0;
    for (int c = 0; c < 3; ++c) {
      const double pf = std::exp(f[i][c]) / zf, pt = std::exp(t[i][c]) / zt;
      kl[i] += pf * (std::log(pf) - std::log(pt));
      mse_sum += (pf - pt) * (pf - pt);
      l1[i] += std::abs(pf - pt) / 3.0;
    }
  }
  auto full = torch::tensor({2.0, 0.5, -1.0, 0.0, 0.0, 0.3}, torch::kDouble).view({2, 3});
  auto twin = torch::tensor({1.0, 1.5, -0.5, 0.2, -0.4, 0.1}, torch::kDouble).view({2, 3});
  auto target = torch::tensor({0, 2}, torch::kLong);
  auto nll = [](const torch::Tensor& p, const torch::Tensor& y) {
    return torch::nll_loss(p.log_softmax(1), y);
  };
  using Loss = ohem::OhemLoss<decltype(nll)>;
  Loss kl_loss(nll, ohem::OhemLossOptions().consistency(ohem::Consistency::KL));
  Loss kl_none(nll, ohem::OhemLossOptions().consistency(ohem::Consistency::KL).reduction(torch::kNone));
  Loss soft_mse(nll, ohem::OhemLossOptions().consistency(ohem::Consistency::SoftmaxMSE));
  CHECK(kl_loss.consistency(full, twin).item<double>() == Approx((kl[0] + kl[1]) / 2).epsilon(1e-12));
  CHECK(ohem_test::close(kl_none.consistency(full, twin), torch::tensor({kl[0], kl[1]}, torch::kDouble), 0.0,
                         1e-12));
  CHECK(soft_mse.consistency(full, twin).item<double>() == Approx(mse_sum / 6).epsilon(1e-12));
  // Log-probabilities give the same values as logits.
  CHECK(kl_loss.consistency(full.log_softmax(1), twin.log_softmax(1)).item<double>() ==
        Approx((kl[0] + kl[1]) / 2).epsilon(1e-12));
  // Hardness on probabilities.
  const auto r = kl_loss(full, twin, target);
  CHECK(ohem_test::close(r.hardness, torch::tensor({l1[0], l1[1]}, torch::kDouble), 0.0, 1e-12));
  // A score prediction (no class dimension) is refused with a message that names the fix.
  const std::string message = error_of([&] { kl_loss.consistency(torch::ones({2}), torch::ones({2})); });
  CHECK(contains(message, "for scores use Consistency::MSE"));
}

TEST_CASE("adoption 5: a classifier trains with the KL consistency through SelfCompetitor", "[adoption]") {
  torch::manual_seed(5);
  Net model;
  ohem::SelfCompetitor sc(
      model, torch::nn::NLLLoss(),
      ohem::SelfCompetitorOptions().loss(ohem::OhemLossOptions().consistency(ohem::Consistency::KL)));
  torch::optim::SGD optimizer(model.parameters(), 0.05);
  auto x = torch::randn({12, 1, 10, 10});
  auto y = torch::randint(0, 3, {12}, torch::kLong);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    optimizer.zero_grad();
    auto r = sc(x, y);
    r.total.backward();
    optimizer.step();
    (step == 0 ? first : last) = r.task.item<double>();
  }
  INFO("task loss " << first << " -> " << last);
  CHECK(last < first);
}

TEST_CASE("adoption 6: free functions as task losses, twin() to save masks", "[adoption]") {
  torch::manual_seed(6);
  Net model;
  auto x = torch::randn({4, 1, 10, 10});
  auto y = torch::tensor({1, 0, 2, 1}, torch::kLong);
  ohem::SelfCompetitor by_function(model, free_nll);  // a function, deduced as its pointer
  ohem::SelfCompetitor by_pointer(model, &free_nll);
  ohem::SelfCompetitor by_module(model, torch::nn::NLLLoss());
  const auto a = by_function(x, y), b = by_pointer(x, y), c = by_module(x, y);
  CHECK(ohem_test::bit_identical(a.total.detach(), c.total.detach()));
  CHECK(ohem_test::bit_identical(b.total.detach(), c.total.detach()));

  const std::string path = ohem_test::temp_path("adoption_masks.pt");
  by_module.twin().save_masks(path);
  ohem::SelfCompetitor reloaded(model, torch::nn::NLLLoss(), ohem::MaskSet::load(path));
  for (size_t i = 0; i < by_module.twin().masks().size(); ++i)
    CHECK(torch::equal(reloaded.twin().masks().mask(i), by_module.twin().masks().mask(i)));
  std::filesystem::remove(path);
}

namespace {

// One Sequential-mode guard check: after a forward, `step` changes the weights; the backward must refuse.
template <typename Optimizer, bool closure = false>
std::string sequential_backward_after_step(const std::function<Optimizer(torch::nn::Linear&)>& make) {
  torch::manual_seed(7);
  torch::nn::Linear model(6, 2);
  ohem::SelfCompetitor sc(
      model, torch::nn::MSELoss(),
      ohem::SelfCompetitorOptions()
          .mode(ohem::SelfCompetitorMode::Sequential)
          .layers(ohem::LayerKind::All)
          .twin(ohem::TwinOptions().layers(ohem::LayerKind::All).masks(ohem::MaskOptions().ratio(0.3))));
  Optimizer optimizer = make(model);
  auto x = torch::randn({8, 6}), y = torch::randn({8, 2});
  optimizer.zero_grad();
  sc(x, y).total.backward();  // gradients for the step below
  auto pending = sc(x, y);
  if constexpr (closure) {
    optimizer.step([&] {
      optimizer.zero_grad();
      auto l = torch::mse_loss(model->forward(x), y);
      l.backward();
      return l;
    });
  } else {
    optimizer.step();
  }
  return error_of([&] { pending.total.backward(); });
}

}  // namespace

TEST_CASE("adoption 7: the Sequential guard catches a step of every built-in optimizer", "[adoption]") {
  using torch::nn::Linear;
  namespace optim = torch::optim;
  const std::string want = "parameters changed since the forward";
  std::string error;
  SECTION("SGD (updates through .data())") {
    error = sequential_backward_after_step<optim::SGD>(
        [](Linear& m) { return optim::SGD(m->parameters(), 0.1); });
  }
  SECTION("SGD with momentum and weight decay") {
    error = sequential_backward_after_step<optim::SGD>([](Linear& m) {
      return optim::SGD(m->parameters(), optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4));
    });
  }
  SECTION("Adam") {
    error = sequential_backward_after_step<optim::Adam>(
        [](Linear& m) { return optim::Adam(m->parameters(), 1e-3); });
  }
  SECTION("AdamW") {
    error = sequential_backward_after_step<optim::AdamW>(
        [](Linear& m) { return optim::AdamW(m->parameters(), 1e-3); });
  }
  SECTION("Adagrad") {
    error = sequential_backward_after_step<optim::Adagrad>(
        [](Linear& m) { return optim::Adagrad(m->parameters(), 0.1); });
  }
  SECTION("RMSprop") {
    error = sequential_backward_after_step<optim::RMSprop>(
        [](Linear& m) { return optim::RMSprop(m->parameters(), 0.01); });
  }
  SECTION("LBFGS (a step with a closure)") {
    error = sequential_backward_after_step<optim::LBFGS, true>(
        [](Linear& m) { return optim::LBFGS(m->parameters(), optim::LBFGSOptions(0.5).max_iter(2)); });
  }
  INFO(error);
  CHECK(contains(error, want));
}

TEST_CASE("a SelfCompetitor used from two threads at once refuses, and never returns a wrong loss",
          "[adoption][threads]") {
  torch::manual_seed(8);
  Net model;
  auto x = torch::randn({4, 1, 10, 10});
  auto y = torch::tensor({0, 1, 2, 0}, torch::kLong);
  ohem::SelfCompetitor sc(model, torch::nn::NLLLoss());
  const double expected = sc(x, y).total.item<double>();
  std::atomic<int> right{0}, wrong{0}, refused{0}, other{0};
  auto worker = [&] {
    for (int i = 0; i < 150; ++i) {
      try {
        const double got = sc(x, y).total.item<double>();
        (got == expected ? right : wrong)++;
      } catch (const c10::Error& e) {
        (contains(e.what_without_backtrace(), "used from two threads at once") ? refused : other)++;
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  INFO("right " << right << ", wrong " << wrong << ", refused " << refused << ", other errors " << other);
  CHECK(wrong == 0);
  CHECK(other == 0);
  CHECK(right > 0);
  CHECK(right + refused == 300);
}
