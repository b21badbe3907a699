// Slots and masks: finding prunable weights, the mask criteria against independent reference
// computations (a plain sort written in this file), statistics, save/load and errors.
#include "support.hpp"

#include <ohem/masks.hpp>
#include <ohem/slots.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using ohem::LayerKind;
using ohem::MaskCriterion;
using ohem::MaskOptions;
using ohem::SlotOptions;

namespace {

// A user module with nested containers: Sequential, ModuleList, ModuleDict and a plain submodule.
struct NestedImpl : torch::nn::Module {
  NestedImpl() {
    stem = register_module("stem", torch::nn::Sequential(torch::nn::Conv2d(3, 4, 3), torch::nn::ReLU()));
    blocks = register_module(
        "blocks", torch::nn::ModuleList(torch::nn::Conv1d(4, 4, 1), torch::nn::ConvTranspose2d(4, 2, 2)));
    heads = register_module("heads",
                            torch::nn::ModuleDict(torch::OrderedDict<std::string, std::shared_ptr<Module>>{
                                {"score", torch::nn::Linear(8, 1).ptr()}}));
    deep = register_module("deep", torch::nn::Conv3d(2, 2, 1));
  }
  torch::nn::Sequential stem{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleDict heads{nullptr};
  torch::nn::Conv3d deep{nullptr};
};

std::vector<std::string> names_of(const std::vector<ohem::Slot>& slots) {
  std::vector<std::string> out;
  for (const auto& s : slots) out.push_back(s.name);
  return out;
}

// The recipe's definition, computed independently: concatenate |w| as doubles, sort ascending, take
// sorted[min(ceil(ratio*N), N-1)].
double sort_threshold(const std::vector<torch::Tensor>& ws, double ratio) {
  std::vector<double> all;
  for (const auto& w : ws) {
    auto d = w.to(torch::kDouble).abs().flatten().contiguous();
    all.insert(all.end(), d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  }
  std::sort(all.begin(), all.end());
  const auto n = static_cast<int64_t>(all.size());
  const auto k = std::min(static_cast<int64_t>(std::ceil(ratio * n)), n - 1);
  return all[k];
}

std::vector<ohem::Slot> slots_for(const std::vector<torch::Tensor>& ws) {
  std::vector<ohem::Slot> slots;
  for (size_t i = 0; i < ws.size(); ++i) {
    ohem::Slot s;
    s.name = "w" + std::to_string(i);
    s.type = "Test";
    s.kind = LayerKind::Custom;
    s.parameter = ws[i];
    slots.push_back(s);
  }
  return slots;
}

// Checks the global-magnitude masks and both selection back ends against the sort definition.
void check_global(const std::vector<torch::Tensor>& ws, double ratio) {
  INFO("ratio " << ratio << ", dtype " << ws[0].scalar_type());
  const double expected = sort_threshold(ws, ratio);
  std::vector<std::string> names(ws.size(), "w");
  int64_t n = 0;
  for (const auto& w : ws) n += w.numel();
  const int64_t k = std::min(static_cast<int64_t>(std::ceil(ratio * n)), n - 1);
  for (auto backend : {ohem::detail::SelectBackend::CpuLoops, ohem::detail::SelectBackend::CpuRadix,
                       ohem::detail::SelectBackend::TensorOps}) {
    const double got = ohem::detail::kth_smallest_abs(ws, names, k, backend);
    // Bit for bit: the same double (threshold values are exact in double for float and double weights).
    CHECK(std::memcmp(&got, &expected, sizeof(double)) == 0);
  }
  auto masks = ohem::compute_masks(slots_for(ws), MaskOptions().ratio(ratio));
  for (size_t i = 0; i < ws.size(); ++i) {
    auto ref = ws[i].to(torch::kDouble).abs().ge(expected);
    CHECK(torch::equal(masks.mask(i), ref));
    CHECK(masks.threshold(i) == expected);  // the statistics report the threshold that was used
  }
  REQUIRE(masks.global_threshold().has_value());
  CHECK(*masks.global_threshold() == expected);
}

// Checks that `loaded` holds `expected`'s masks: the same names, bits and thresholds, in the same order.
void check_same_masks(const ohem::MaskSet& loaded, const ohem::MaskSet& expected) {
  REQUIRE(loaded.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("mask " << i);
    CHECK(loaded.name(i) == expected.name(i));
    CHECK(ohem_test::bit_identical(loaded.mask(i), expected.mask(i)));
    CHECK(loaded.threshold(i) == expected.threshold(i));
  }
}

}  // namespace
TORCH_MODULE(Nested);

TEST_CASE("find_slots walks nested containers and follows the recipe's layer kinds", "[slots]") {
  Nested net;
  auto recipe = ohem::find_slots(*net);
  CHECK(names_of(recipe) ==
        std::vector<std::string>{"stem.0.weight", "blocks.0.weight", "blocks.1.weight", "deep.weight"});
  CHECK(recipe[2].type == "ConvTranspose2d");
  CHECK(recipe[2].output_dim == 1);
  CHECK(recipe[0].parameter.is_same(net->stem[0]->as<torch::nn::Conv2d>()->weight));

  auto all = ohem::find_slots(*net, SlotOptions().kinds(LayerKind::All));
  CHECK(names_of(all) == std::vector<std::string>{"stem.0.weight", "blocks.0.weight", "blocks.1.weight",
                                                  "heads.score.weight", "deep.weight"});
  CHECK(all.size() == 5);

  auto only_linear = ohem::find_slots(*net, SlotOptions().kinds(LayerKind::Linear));
  CHECK(names_of(only_linear) == std::vector<std::string>{"heads.score.weight"});

  auto filtered = ohem::find_slots(*net, SlotOptions().kinds(LayerKind::All).exclude({"^heads\\.", "deep"}));
  CHECK(names_of(filtered) ==
        std::vector<std::string>{"stem.0.weight", "blocks.0.weight", "blocks.1.weight"});
  CHECK(all.size() == 5);
  auto included = ohem::find_slots(*net, SlotOptions().include({"^blocks\\."}));
  CHECK(names_of(included) == std::vector<std::string>{"blocks.0.weight", "blocks.1.weight"});

  // The names are the module's own parameter names.
  auto params = net->named_parameters();
  for (const auto& s : all) {
    REQUIRE(params.contains(s.name));
    CHECK(params[s.name].is_same(s.parameter));
  }
}

TEST_CASE("find_slots accepts a bare layer as root and lists a shared weight once", "[slots]") {
  auto conv = torch::nn::Conv2d(2, 2, 1);
  auto slots = ohem::find_slots(*conv);
  REQUIRE(slots.size() == 1);
  CHECK(slots[0].name == "weight");

  auto shared = torch::nn::Sequential(conv, torch::nn::ReLU(), conv);
  CHECK(ohem::find_slots(*shared).size() == 1);
}

TEST_CASE("find_slots errors name what was looked for", "[slots][errors]") {
  auto mlp = torch::nn::Sequential(torch::nn::Linear(2, 2), torch::nn::ReLU());
  CHECK_THROWS_WITH(ohem::find_slots(*mlp), Catch::Contains("no prunable weight found") &&
                                                Catch::Contains("Conv|ConvTranspose|Custom") &&
                                                Catch::Contains("register_prunable"));
  auto conv = torch::nn::Sequential(torch::nn::Conv2d(1, 1, 1));
  CHECK_THROWS_WITH(ohem::find_slots(*conv, SlotOptions().exclude({"weight"})),
                    Catch::Contains("exclude patterns {weight}"));
  CHECK_THROWS_WITH(ohem::find_slots(*conv, SlotOptions().include({"(unclosed"})),
                    Catch::Contains("invalid regular expression \"(unclosed\""));
}

TEST_CASE("global magnitude equals the sort definition on random weights", "[masks]") {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    std::vector<torch::Tensor> ws = {torch::randn({16, 3, 3, 3}, dtype),
                                     torch::randn({32, 16, 3, 3}, dtype) * 0.1,
                                     torch::randn({7}, dtype) * 10};
    for (double ratio : {0.0, 0.3, 0.65, 0.7, 0.95, 0.999999}) check_global(ws, ratio);
  }
}

TEST_CASE("global magnitude equals the sort definition on crafted weights", "[masks]") {
  const float denorm = std::numeric_limits<float>::denorm_min();
  SECTION("ties at the threshold are kept") {
    auto w = torch::tensor({0.5f, -0.5f, 0.5f, 0.25f, -1.0f, 0.5f});
    check_global({w}, 0.3);  // k = ceil(1.8) = 2 -> t = 0.5: all but 0.25 are kept
    auto masks = ohem::compute_masks(slots_for({w}), MaskOptions().ratio(0.3));
    CHECK(masks.mask(0).sum().item<int64_t>() == 5);
  }
  SECTION("zeros and negative zero") {
    auto w = torch::tensor({0.0f, -0.0f, 0.0f, 1.0f, -0.0f, 2.0f});
    for (double r : {0.0, 0.2, 0.5, 0.7, 0.9}) check_global({w}, r);
  }
  SECTION("denormals") {
    auto w =
        torch::tensor({denorm, 3 * denorm, -2 * denorm, 0.0f, std::numeric_limits<float>::min(), 1e-30f});
    for (double r : {0.0, 0.1, 0.34, 0.5, 0.67, 0.84}) check_global({w}, r);
    auto d = torch::tensor({4.9e-324, -1e-310, 2e-308, 0.0, 1.0}, torch::kDouble);
    for (double r : {0.0, 0.2, 0.4, 0.6, 0.8}) check_global({d}, r);
  }
  SECTION("a single weight is always kept") {
    for (double r : {0.0, 0.5, 0.99}) {
      check_global({torch::tensor({-3.0f})}, r);
      auto masks = ohem::compute_masks(slots_for({torch::tensor({-3.0f})}), MaskOptions().ratio(r));
      CHECK(masks.mask(0).item<bool>());
    }
  }
  SECTION("all-equal weights are all kept") {
    auto w = torch::full({5, 5}, -0.125f);
    check_global({w, w.clone()}, 0.65);
    auto masks = ohem::compute_masks(slots_for({w}), MaskOptions().ratio(0.65));
    CHECK(masks.mask(0).all().item<bool>());
  }
  SECTION("ratios close to 1 keep the largest weight(s)") {
    auto w = torch::arange(1, 1001, torch::kFloat).view({10, 100});
    for (double r : {0.999, 0.9999, 1.0 - 1e-12}) check_global({w}, r);
    auto masks = ohem::compute_masks(slots_for({w}), MaskOptions().ratio(0.9999));
    CHECK(masks.mask(0).sum().item<int64_t>() == 1);
    CHECK(masks.mask(0)[9][99].item<bool>());
  }
  SECTION("many layers with values spanning exponents, mixed dtypes widen to double") {
    auto a = torch::randn({1000}) * torch::pow(10.0, torch::randint(-20, 5, {1000}));
    auto b = torch::randn({333}, torch::kDouble);
    check_global({a, b}, 0.65);
  }
  SECTION("half precision is widened exactly") {
    auto h = torch::randn({200}).to(torch::kHalf);
    const double t = sort_threshold({h}, 0.5);
    auto masks = ohem::compute_masks(slots_for({h}), MaskOptions().ratio(0.5));
    CHECK(torch::equal(masks.mask(0), h.to(torch::kDouble).abs().ge(t)));
  }
}

TEST_CASE("the fused mask pass equals |w| >= t computed elementwise in double", "[masks]") {
  // Reference: each weight widened to double (exact), its magnitude compared with t in double; NaN is
  // never kept. Sizes around the 16-element vector step, values with ties, zeros of both signs,
  // denormals, infinities and NaN (the pass's own contract; compute_masks refuses them earlier).
  const float denorm = std::numeric_limits<float>::denorm_min();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> pool = {0.5f,  -0.5f,      0.25f, -0.0f, 0.0f, denorm, -3 * denorm, 1e-30f,
                                   -1.0f, 0.5000001f, 2.0f,  inf,   -inf, nan,    0.4999999f,  -0.25f};
  auto reference = [](const torch::Tensor& w, double t) {
    torch::Tensor d = w.to(torch::kDouble).contiguous();
    std::vector<uint8_t> out(d.numel());
    for (int64_t i = 0; i < d.numel(); ++i) {
      const double v = std::fabs(d.data_ptr<double>()[i]);
      out[i] = !std::isnan(v) && v >= t;
    }
    return torch::from_blob(out.data(), {d.numel()}, torch::kUInt8).to(torch::kBool).view(w.sizes()).clone();
  };
  for (int64_t n : {1, 7, 15, 16, 17, 31, 32, 33, 100}) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = pool[(i * 7 + n) % pool.size()];
    const torch::Tensor w = torch::tensor(v);
    for (double t : {0.0, static_cast<double>(denorm), 0.25, 0.5, static_cast<double>(0.5000001f), 2.0,
                     static_cast<double>(inf)}) {
      INFO("n " << n << ", t " << t);
      CHECK(torch::equal(ohem::detail::keep_at_least(w, t), reference(w, t)));
      CHECK(torch::equal(ohem::detail::keep_at_least(w.to(torch::kDouble), t), reference(w, t)));
    }
    // A threshold that is not a float value: compared in double (0.3 lies between two floats).
    CHECK(torch::equal(ohem::detail::keep_at_least(w, 0.3), reference(w, 0.3)));
  }
  // Non-contiguous weights take LibTorch's path and agree.
  const torch::Tensor wide = torch::randn({33, 20});
  const torch::Tensor strided = wide.t();
  const double t = std::fabs(wide[3][4].item<double>());
  CHECK(torch::equal(ohem::detail::keep_at_least(strided, t), reference(strided, t)));
  CHECK(torch::equal(ohem::detail::keep_at_least(wide, t), reference(wide, t)));
}

TEST_CASE("the sample-guided single pass is exact and falls back when its bracket fails", "[masks]") {
  // Both gather loops: the fastest (AVX2 where the CPU has it) and the portable one (SSE2).
  using Path = ohem::detail::GatherPath;
  const Path path = GENERATE(Path::Fastest, Path::Portable);
  INFO("gather path: " << (path == Path::Fastest ? "fastest" : "portable"));
  // Large enough (>= 2^19 weights) for the sample-guided path; several layers of different scales.
  std::vector<torch::Tensor> ws = {torch::randn({300000}) * 0.01, torch::randn({256, 1024}) * 0.2,
                                   torch::randn({1000})};
  std::vector<std::string> names(ws.size(), "w");
  int64_t n = 0;
  for (const auto& w : ws) n += w.numel();
  for (double ratio : {0.0, 0.1, 0.5, 0.65, 0.7, 0.99, 0.999999}) {
    INFO("ratio " << ratio);
    const int64_t k = std::min(static_cast<int64_t>(std::ceil(ratio * n)), n - 1);
    double sampled = -1;
    const bool answered = ohem::detail::select_sampled_float(ws, names, k, &sampled, path);
    if (ratio > 0.05 && ratio < 0.995) CHECK(answered);  // the bracket holds for interior quantiles
    if (answered) CHECK(sampled == sort_threshold(ws, ratio));
    check_global(ws, ratio);
  }
  // Many equal weights overflow the candidate buffer: the exact radix fallback answers.
  auto equal = torch::full({600000}, 0.5f);
  equal.narrow(0, 0, 1000).fill_(0.25f);
  double unused = 0;
  CHECK_FALSE(ohem::detail::select_sampled_float({equal}, {"equal"}, 300000, &unused, path));
  check_global({equal}, 0.5);
  check_global({equal}, 0.001);
  // Errors name the layer on this path too.
  auto nan = torch::randn({600000});
  nan[123456] = std::nanf("");
  CHECK_THROWS_WITH(ohem::detail::kth_smallest_abs({nan}, {"layer3.0.conv1.weight"}, 1000),
                    Catch::Contains("\"layer3.0.conv1.weight\" contains NaN or Inf"));
}

TEST_CASE("layer-wise magnitude applies the rule per layer", "[masks]") {
  std::vector<torch::Tensor> ws = {torch::randn({40}), torch::randn({10, 10}) * 100};
  auto masks =
      ohem::compute_masks(slots_for(ws), MaskOptions().criterion(MaskCriterion::LayerMagnitude).ratio(0.5));
  for (size_t i = 0; i < ws.size(); ++i) {
    CHECK(torch::equal(masks.mask(i), ws[i].to(torch::kDouble).abs().ge(sort_threshold({ws[i]}, 0.5))));
    CHECK(masks.mask(i).sum().item<int64_t>() == ws[i].numel() / 2);
    CHECK(masks.stats()[i].threshold == sort_threshold({ws[i]}, 0.5));  // each layer's own threshold
  }
  CHECK_FALSE(masks.global_threshold().has_value());
  auto random = ohem::compute_masks(slots_for(ws), MaskOptions().criterion(MaskCriterion::Random));
  CHECK(std::isnan(random.threshold(0)));  // no magnitude threshold made a random mask
}

TEST_CASE("random masks prune an exact, seeded count per layer", "[masks]") {
  std::vector<torch::Tensor> ws = {torch::randn({10, 10}), torch::randn({7})};
  auto opts = MaskOptions().criterion(MaskCriterion::Random).ratio(0.65).seed(7);
  auto a = ohem::compute_masks(slots_for(ws), opts);
  auto b = ohem::compute_masks(slots_for(ws), opts);
  auto c = ohem::compute_masks(slots_for(ws), opts.seed(8));
  CHECK(a.mask(0).logical_not().sum().item<int64_t>() == 65);  // ceil(0.65 * 100)
  CHECK(a.mask(1).logical_not().sum().item<int64_t>() == 5);   // ceil(0.65 * 7) = 5
  CHECK(torch::equal(a.mask(0), b.mask(0)));
  CHECK_FALSE(torch::equal(a.mask(0), c.mask(0)));
}

TEST_CASE("structured L1 masks prune whole output channels of smallest L1 norm", "[masks]") {
  // Conv weight 4x2x1x1 with channel L1 norms 3, 1, 4, 2 -> ratio 0.5 prunes channels 1 and 3.
  auto conv = torch::tensor({1.0f, -2.0f, 0.5f, 0.5f, -4.0f, 0.0f, 1.0f, 1.0f}).view({4, 2, 1, 1});
  // ConvTranspose weight [in=2, out=3, 1, 1]: output channel L1 norms 2, 6, 4 -> ratio 0.3 prunes channel 0.
  auto tconv = torch::tensor({1.0f, 3.0f, 2.0f, 1.0f, 3.0f, 2.0f}).view({2, 3, 1, 1});
  auto slots = slots_for({conv, tconv});
  slots[1].output_dim = 1;
  auto masks = ohem::compute_masks(slots, MaskOptions().criterion(MaskCriterion::StructuredL1).ratio(0.5));
  auto expected0 = torch::tensor({true, false, true, false}).view({4, 1, 1, 1}).expand({4, 2, 1, 1});
  CHECK(torch::equal(masks.mask(0), expected0));
  auto m1 = ohem::compute_masks(slots, MaskOptions().criterion(MaskCriterion::StructuredL1).ratio(0.3));
  auto expected1 = torch::tensor({false, true, true}).view({1, 3, 1, 1}).expand({2, 3, 1, 1});
  CHECK(torch::equal(m1.mask(1), expected1));
}

TEST_CASE("the extra random fraction removes survivors with the recipe's probability", "[masks]") {
  auto w = torch::randn({200, 100});
  const int64_t n = w.numel();
  auto base = ohem::compute_masks(slots_for({w}), MaskOptions().ratio(0.5));
  auto extra = ohem::compute_masks(slots_for({w}), MaskOptions().ratio(0.5).random_fraction(0.1).seed(3));
  // Only surviving weights are removed.
  CHECK(extra.mask(0).logical_and(base.mask(0).logical_not()).sum().item<int64_t>() == 0);
  // p = ceil(0.1 N) / (N - ceil(0.5 N)) = 0.2; survivors 10000 -> removed ~ Binomial(10000, 0.2): 2000 ± 40.
  const double removed = static_cast<double>(base.kept() - extra.kept());
  const double p = std::ceil(0.1 * n) / (n - std::ceil(0.5 * n));
  const double mean = p * base.kept(), sd = std::sqrt(base.kept() * p * (1 - p));
  CHECK(std::abs(removed - mean) < 5 * sd);
}

TEST_CASE("mask options and weights are validated", "[masks][errors]") {
  auto slots = slots_for({torch::randn({4})});
  for (double bad : {-0.1, 1.0, 1.5, std::nan(""), std::numeric_limits<double>::infinity()}) {
    CHECK_THROWS_WITH(ohem::compute_masks(slots, MaskOptions().ratio(bad)),
                      Catch::Contains("MaskOptions::ratio must be in [0, 1)"));
  }
  CHECK_THROWS_WITH(ohem::compute_masks(slots, MaskOptions().random_fraction(1.0)),
                    Catch::Contains("random_fraction must be in [0, 1), got 1"));
  auto nan_slots = slots_for({torch::randn({4}), torch::tensor({1.0f, std::nanf("")})});
  nan_slots[1].name = "layer4.1.conv2.weight";
  for (auto c :
       {MaskCriterion::GlobalMagnitude, MaskCriterion::LayerMagnitude, MaskCriterion::StructuredL1}) {
    CHECK_THROWS_WITH(ohem::compute_masks(nan_slots, MaskOptions().criterion(c)),
                      Catch::Contains("\"layer4.1.conv2.weight\" contains NaN or Inf"));
  }
  auto inf_slots = slots_for({torch::tensor({std::numeric_limits<float>::infinity()})});
  CHECK_THROWS_WITH(ohem::compute_masks(inf_slots), Catch::Contains("contains NaN or Inf"));
}

TEST_CASE("mask statistics and summary", "[masks]") {
  ohem::MaskSet set;
  set.add("a.weight", torch::tensor({true, false, false, true}));
  set.add("b.weight", torch::ones({2, 3}, torch::kBool));
  CHECK(set.numel() == 10);
  CHECK(set.kept() == 8);
  CHECK(set.sparsity() == Approx(0.2).margin(1e-15));
  auto st = set.stats();
  CHECK(st[0].sparsity() == Approx(0.5).margin(1e-15));
  CHECK(st[1].shape == std::vector<int64_t>{2, 3});
  const std::string table = set.summary();
  CHECK_THAT(table, Catch::Contains("a.weight") && Catch::Contains("2x3") && Catch::Contains("50.00%") &&
                        Catch::Contains("total") && Catch::Contains("20.00%"));
  CHECK_THROWS_WITH(set.add("a.weight", torch::ones({1}, torch::kBool)),
                    Catch::Contains("duplicate mask name"));
  CHECK_THROWS_WITH(set.add("c", torch::ones({1})), Catch::Contains("must be bool tensors, got Float"));
  CHECK_THROWS_WITH(set.at("zzz"), Catch::Contains("no mask for parameter \"zzz\""));
}

TEST_CASE("masks round-trip through a file and loading validates them", "[masks][io]") {
  Nested net;
  auto slots = ohem::find_slots(*net);
  auto masks = ohem::compute_masks(slots);
  const auto path = ohem_test::temp_path("masks.pt");
  masks.save(path);
  auto loaded = ohem::MaskSet::load(path);
  check_same_masks(loaded, masks);
  REQUIRE(loaded.global_threshold().has_value());
  CHECK(*loaded.global_threshold() == *masks.global_threshold());
  CHECK(std::string(loaded.summary()).find(fmt::format("{:.6g}", *masks.global_threshold())) !=
        std::string::npos);
  CHECK_NOTHROW(loaded.check_matches(slots));

  SECTION("a missing layer") {
    ohem::MaskSet partial;
    partial.add(masks.name(0), masks.mask(0));
    CHECK_THROWS_WITH(partial.check_matches(slots), Catch::Contains("no mask for layer \"blocks.0.weight\""));
  }
  SECTION("an extra layer") {
    ohem::MaskSet more = loaded;
    more.add("fc.weight", torch::ones({1}, torch::kBool));
    CHECK_THROWS_WITH(more.check_matches(slots),
                      Catch::Contains("mask for \"fc.weight\", which is not a prunable layer"));
  }
  SECTION("a wrong shape") {
    ohem::MaskSet wrong;
    for (size_t i = 0; i < masks.size(); ++i) {
      wrong.add(masks.name(i), i == 1 ? torch::ones({3, 3}, torch::kBool) : masks.mask(i));
    }
    CHECK_THROWS_WITH(
        wrong.check_matches(slots),
        Catch::Contains("mask of layer \"blocks.0.weight\" has shape [3, 3], but the weight has shape "
                        "[4, 4, 1]"));
  }
  SECTION("a file that is not a mask file, or missing") {
    torch::serialize::OutputArchive other;
    other.write("x", torch::ones({1}));
    const auto bad = ohem_test::temp_path("notmasks.pt");
    other.save_to(bad);
    CHECK_THROWS_WITH(ohem::MaskSet::load(bad),
                      Catch::Contains("mask file \"" + bad + "\" does not hold ohem masks"));
    CHECK_THROWS_WITH(ohem::MaskSet::load(bad + ".missing"), Catch::Contains("cannot read mask file"));
  }
  SECTION("a float mask in the file") {
    torch::serialize::OutputArchive arch;
    arch.write("ohem_mask_format", c10::IValue(int64_t{1}));
    c10::List<std::string> names;
    names.push_back("stem.0.weight");
    arch.write("names", c10::IValue(names));
    arch.write("mask0", torch::ones({4, 3, 3, 3}));
    const auto bad = ohem_test::temp_path("floatmask.pt");
    arch.save_to(bad);
    CHECK_THROWS_WITH(ohem::MaskSet::load(bad),
                      Catch::Contains("the mask of \"stem.0.weight\" has dtype Float, expected Bool"));
  }
}

TEST_CASE("masks round-trip through a stream, a wrong or damaged payload is a clear error", "[masks][io]") {
  Nested net;
  auto slots = ohem::find_slots(*net);
  auto masks = ohem::compute_masks(slots, ohem::MaskOptions().criterion(ohem::MaskCriterion::LayerMagnitude));
  std::ostringstream out;
  masks.save(out);
  const std::string bytes = out.str();
  std::istringstream in(bytes);
  const auto loaded = ohem::MaskSet::load(in, "the test buffer");
  check_same_masks(loaded, masks);
  CHECK_FALSE(loaded.global_threshold().has_value());
  // The file format is the stream format: a saved file holds exactly these bytes.
  const auto path = ohem_test::temp_path("stream_masks.pt");
  masks.save(path);
  CHECK(ohem_test::read_file(path) == bytes);

  SECTION("truncated bytes") {
    std::istringstream cut(bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_WITH(
        ohem::MaskSet::load(cut, "checkpoint \"c.pt\""),
        Catch::Contains("cannot read masks from checkpoint \"c.pt\" (not a mask payload, or damaged)"));
  }
  SECTION("not an archive at all") {
    std::istringstream junk("certainly not a zip archive");
    CHECK_THROWS_WITH(ohem::MaskSet::load(junk, "the junk"),
                      Catch::Contains("cannot read masks from the junk"));
  }
  SECTION("an archive of something else") {
    torch::serialize::OutputArchive other;
    other.write("x", torch::ones({1}));
    std::ostringstream o;
    other.save_to(o);
    std::istringstream i(o.str());
    CHECK_THROWS_WITH(ohem::MaskSet::load(i, "the buffer"),
                      Catch::Contains("the buffer does not hold ohem masks"));
  }
  SECTION("a name that is not a string, thresholds of the wrong size") {
    torch::serialize::OutputArchive arch;
    arch.write("ohem_mask_format", c10::IValue(int64_t{1}));
    c10::List<int64_t> names;
    names.push_back(7);
    arch.write("names", c10::IValue(names));
    arch.write("mask0", torch::ones({2}, torch::kBool));
    std::ostringstream o;
    arch.save_to(o);
    std::istringstream i(o.str());
    CHECK_THROWS_WITH(ohem::MaskSet::load(i, "b"), Catch::Contains("b: name 0 is not a string"));

    torch::serialize::OutputArchive arch2;
    arch2.write("ohem_mask_format", c10::IValue(int64_t{1}));
    c10::List<std::string> names2;
    names2.push_back("a.weight");
    arch2.write("names", c10::IValue(names2));
    arch2.write("mask0", torch::ones({2}, torch::kBool));
    arch2.write("thresholds", torch::zeros({3}, torch::kDouble));
    std::ostringstream o2;
    arch2.save_to(o2);
    std::istringstream i2(o2.str());
    CHECK_THROWS_WITH(ohem::MaskSet::load(i2, "b"), Catch::Contains("b: expected 1 double thresholds"));
  }
}
