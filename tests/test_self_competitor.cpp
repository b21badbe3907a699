// Tests of the one-call self-competitor: Sequential mode reproduces Joint mode (gradients, BatchNorm
// statistics, dropout RNG), and the default configuration reproduces the paper's public recipe computed by
// hand here (four functional forwards with the masks applied by hand, the recipe's loss formula, one Adam
// step written out).
#include "support.hpp"
#include "support_script.hpp"

#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace nn = torch::nn;
using ohem_test::close;

// A net with BatchNorm and dropout in the convolutional part and before the head.
nn::Sequential make_dropout_net() {
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).padding(1)), nn::BatchNorm2d(6), nn::ReLU(),
                     nn::Dropout(0.3), nn::Conv2d(nn::Conv2dOptions(6, 8, 3).stride(2)), nn::BatchNorm2d(8),
                     nn::ReLU(), nn::AdaptiveAvgPool2d(1), nn::Flatten(), nn::Dropout(0.2), nn::Linear(8, 1));
  net->to(torch::kDouble);
  return net;
}

nn::Sequential copy_of(const nn::Sequential& net) {
  return nn::Sequential(std::dynamic_pointer_cast<nn::SequentialImpl>(net->clone()));
}

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.defined() ? t.detach().clone() : t);
  return out;
}

struct Outcome {
  std::vector<double> totals;
  std::vector<torch::Tensor> hardness;
  std::vector<torch::Tensor> grads;  // of the last step
  std::vector<torch::Tensor> params;
  std::vector<torch::Tensor> buffers;
  std::vector<torch::Tensor> twin_buffers;
  torch::Tensor next_random;  // the RNG stream after training
};

// Two training steps (forward, backward, SGD step) in the given mode from a fixed seed.
template <typename TaskLoss, typename Input, typename Target>
Outcome train(nn::Sequential net, TaskLoss task, ohem::SelfCompetitorOptions options, const Input& input,
              const Target& target) {
  ohem::SelfCompetitor sc(net, task, options);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.05));
  torch::manual_seed(1234);
  Outcome o;
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    ohem::OhemLossResult r = sc(input, target);
    r.backward();
    o.totals.push_back(r.total.item<double>());
    o.hardness.push_back(r.hardness);
    std::vector<torch::Tensor> grads;
    for (const auto& p : net->parameters()) grads.push_back(p.grad());
    o.grads = clones(grads);
    opt.step();
  }
  o.params = clones(net->parameters());
  o.buffers = clones(net->buffers());
  for (size_t k = 0; k < sc.num_twins(); ++k) {
    for (const auto& b : sc.twin(k).named_twin_buffers()) o.twin_buffers.push_back(b.second.clone());
  }
  o.next_random = torch::rand({8}, torch::kDouble);
  return o;
}

void check_same(const Outcome& joint, const Outcome& seq) {
  REQUIRE(joint.totals.size() == seq.totals.size());
  for (size_t i = 0; i < joint.totals.size(); ++i) {
    CHECK(seq.totals[i] == Approx(joint.totals[i]).margin(1e-12));
    CHECK(close(seq.hardness[i], joint.hardness[i], 0, 1e-12));
  }
  REQUIRE(joint.grads.size() == seq.grads.size());
  for (size_t i = 0; i < joint.grads.size(); ++i) {
    INFO("parameter " << i);
    CHECK(close(seq.grads[i], joint.grads[i], 0, 1e-6));
    CHECK(close(seq.params[i], joint.params[i], 0, 1e-6));
  }
  REQUIRE(joint.buffers.size() == seq.buffers.size());
  for (size_t i = 0; i < joint.buffers.size(); ++i) {
    INFO("buffer " << i);
    CHECK(close(seq.buffers[i], joint.buffers[i], 0, 1e-12));
  }
  REQUIRE(joint.twin_buffers.size() == seq.twin_buffers.size());
  for (size_t i = 0; i < joint.twin_buffers.size(); ++i) {
    INFO("twin buffer " << i);
    CHECK(close(seq.twin_buffers[i], joint.twin_buffers[i], 0, 1e-12));
  }
  CHECK(ohem_test::bit_identical(seq.next_random, joint.next_random));
}

}  // namespace

TEST_CASE("Sequential mode gives Joint mode's gradients, BatchNorm statistics and RNG stream",
          "[self_competitor]") {
  torch::manual_seed(7);
  auto net = make_dropout_net();
  auto x = torch::randn({6, 3, 8, 8}, torch::kDouble);
  auto mos = torch::rand({6}, torch::kDouble) * 4 + 1;
  auto base = ohem::SelfCompetitorOptions();
  // Dropout is active: two forwards draw different masks, so matching results need the RNG replay.
  CHECK_FALSE(ohem_test::bit_identical(net->forward(x), net->forward(x)));

  SECTION("tensor input, MOS loss, shared BatchNorm (the recipe's settings)") {
    auto joint = train(copy_of(net), ohem::MosMSELoss{}, base, x, mos);
    auto seq =
        train(copy_of(net), ohem::MosMSELoss{}, base.mode(ohem::SelfCompetitorMode::Sequential), x, mos);
    check_same(joint, seq);
  }
  SECTION("image pairs, fidelity loss, ensemble of 2 random-mask twins, separate BatchNorm, L1, α/λ") {
    auto x2 = torch::randn({6, 3, 8, 8}, torch::kDouble);
    auto g = (torch::rand({6}, torch::kDouble) > 0.5).to(torch::kDouble);
    auto opts =
        base.num_twins(2)
            .twin(ohem::TwinOptions()
                      .masks(ohem::MaskOptions().criterion(ohem::MaskCriterion::Random).ratio(0.5).seed(3))
                      .batchnorm(ohem::BatchNormPolicy::Separate))
            .loss(ohem::OhemLossOptions().alpha(0.5).lambda(2.0).consistency(ohem::Consistency::L1));
    auto input = std::make_pair(x, x2);
    auto joint = train(copy_of(net), ohem::PairwiseFidelityLoss{}, opts, input, g);
    auto seq = train(copy_of(net), ohem::PairwiseFidelityLoss{},
                     opts.mode(ohem::SelfCompetitorMode::Sequential), input, g);
    CHECK(joint.twin_buffers.size() == 2 * 2 * 3);
    check_same(joint, seq);
  }
  SECTION("frozen BatchNorm in the twin, stop-gradient on the full side, PLCC loss") {
    auto opts = base.twin(ohem::TwinOptions().batchnorm(ohem::BatchNormPolicy::Frozen))
                    .loss(ohem::OhemLossOptions().detach_full(true));
    auto joint = train(copy_of(net), ohem::PlccLoss{}, opts, x, mos);
    auto seq = train(copy_of(net), ohem::PlccLoss{}, opts.mode(ohem::SelfCompetitorMode::Sequential), x, mos);
    check_same(joint, seq);
  }
}

TEST_CASE("SelfCompetitor: ensemble masks differ, run() with a custom forward, eval/no-grad use",
          "[self_competitor]") {
  torch::manual_seed(11);
  auto net = make_dropout_net();
  auto x = torch::randn({4, 3, 8, 8}, torch::kDouble);
  auto mos = torch::rand({4}, torch::kDouble);
  ohem::SelfCompetitor sc(net, ohem::MosL1Loss{},
                          ohem::SelfCompetitorOptions().num_twins(3).twin(ohem::TwinOptions().masks(
                              ohem::MaskOptions().criterion(ohem::MaskCriterion::Random))));
  REQUIRE(sc.num_twins() == 3);
  CHECK_FALSE(ohem_test::bit_identical(sc.twin(0).masks().mask(0), sc.twin(1).masks().mask(0)));
  CHECK_FALSE(ohem_test::bit_identical(sc.twin(1).masks().mask(0), sc.twin(2).masks().mask(0)));
  CHECK_THROWS_WITH(sc.twin(3), Catch::Contains("3"));

  net->eval();  // deterministic: the same call twice gives the same result
  auto a = sc(x, mos);
  auto b = sc.run([&] { return net->forward(x); }, mos);
  CHECK(ohem_test::bit_identical(a.total, b.total));
  {
    torch::NoGradGuard no_grad;
    auto r = sc(x, mos);
    CHECK(r.total.item<double>() == Approx(a.total.item<double>()).margin(1e-12));
    CHECK_THROWS_WITH(r.backward(), Catch::Contains("no graph"));
  }
  CHECK_THROWS_WITH(ohem::SelfCompetitor(net, ohem::MosL1Loss{}, ohem::SelfCompetitorOptions().num_twins(0)),
                    Catch::Contains("twins") && Catch::Contains("0"));
}

namespace {

// The gradients of one step from a copy of `net`: the same seed, input and targets, the total
// back-propagated by `backprop`.
template <typename Backprop>
std::vector<torch::Tensor> step_grads(const nn::Sequential& net, ohem::SelfCompetitorMode mode,
                                      const torch::Tensor& x, const torch::Tensor& mos, Backprop backprop) {
  auto copy = copy_of(net);
  ohem::SelfCompetitor sc(copy, ohem::MosMSELoss{}, ohem::SelfCompetitorOptions().mode(mode));
  torch::manual_seed(1234);
  ohem::OhemLossResult r = sc(x, mos);
  REQUIRE(r.total.requires_grad());
  backprop(r);
  std::vector<torch::Tensor> grads;
  for (const auto& p : copy->parameters()) grads.push_back(p.grad());
  return clones(grads);
}

void check_grads(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& expected,
                 double scale) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("parameter " << i);
    REQUIRE(got[i].defined());
    CHECK(close(got[i], expected[i] * scale, 1e-9, 1e-12));
  }
}

}  // namespace

TEST_CASE("Sequential mode: every way of back-propagating the total gives Joint's gradients",
          "[self_competitor]") {
  torch::manual_seed(21);
  auto net = make_dropout_net();
  auto x = torch::randn({6, 3, 8, 8}, torch::kDouble);
  auto mos = torch::rand({6}, torch::kDouble) * 4 + 1;
  using Mode = ohem::SelfCompetitorMode;
  const auto joint =
      step_grads(net, Mode::Joint, x, mos, [](ohem::OhemLossResult& r) { r.total.backward(); });
  // The Joint gradients are not trivially zero.
  double norm = 0;
  for (const auto& g : joint) norm += g.abs().sum().item<double>();
  REQUIRE(norm > 1e-3);

  SECTION("total.backward()") {
    check_grads(
        step_grads(net, Mode::Sequential, x, mos, [](ohem::OhemLossResult& r) { r.total.backward(); }), joint,
        1.0);
  }
  SECTION("(total / 4).backward(), as with gradient accumulation") {
    check_grads(
        step_grads(net, Mode::Sequential, x, mos, [](ohem::OhemLossResult& r) { (r.total / 4).backward(); }),
        joint, 0.25);
  }
  SECTION("torch::autograd::backward({total})") {
    check_grads(step_grads(net, Mode::Sequential, x, mos,
                           [](ohem::OhemLossResult& r) { torch::autograd::backward({r.total}); }),
                joint, 1.0);
  }
  SECTION("a loss scaler multiplying the total") {
    check_grads(step_grads(net, Mode::Sequential, x, mos,
                           [](ohem::OhemLossResult& r) { (r.total * 1024.0).backward(); }),
                joint, 1024.0);
  }
  SECTION("the result's backward()") {
    check_grads(step_grads(net, Mode::Sequential, x, mos, [](ohem::OhemLossResult& r) { r.backward(); }),
                joint, 1.0);
  }
}

TEST_CASE("Sequential mode refuses a second backward, a forward before the backward, a stale backward",
          "[self_competitor]") {
  torch::manual_seed(5);
  auto net = make_dropout_net();
  auto x = torch::randn({4, 3, 8, 8}, torch::kDouble);
  auto mos = torch::rand({4}, torch::kDouble);
  ohem::SelfCompetitor sc(net, ohem::MosMSELoss{},
                          ohem::SelfCompetitorOptions().mode(ohem::SelfCompetitorMode::Sequential));
  {
    auto r = sc(x, mos);
    r.total.backward();
    CHECK_THROWS_WITH(r.total.backward(), Catch::Contains("backward through the graph a second time"));
  }
  {
    auto r1 = sc(x, mos);
    CHECK_THROWS_WITH(sc(x, mos), Catch::Contains("pending") && Catch::Contains("back-propagate"));
    CHECK_THROWS_WITH(sc.run([&] { return net->forward(x); }, mos), Catch::Contains("pending"));
    r1.total.backward();
    CHECK_NOTHROW(sc(x, mos).total.backward());
  }
  {
    auto dropped = sc(x, mos);  // a result dropped without a backward does not block the next forward
  }
  {
    auto r = sc(x, mos);
    net->forward(x);  // a forward through the model itself updates the BatchNorm statistics
    CHECK_THROWS_WITH(r.total.backward(),
                      Catch::Contains("buffers") && Catch::Contains("back-propagate it first"));
  }
  {
    auto r = sc(x, mos);
    {
      torch::NoGradGuard no_grad;
      net->parameters()[0].add_(1.0);  // what optimizer.step() does
    }
    CHECK_THROWS_WITH(r.total.backward(), Catch::Contains("optimizer.step()"));
  }
}

namespace {

// A conv net that records, for each forward, whether autograd was on and whether the output of the previous
// forward with autograd on (and with it that forward's graph) had been freed by then.
struct RecorderImpl : nn::Module {
  RecorderImpl()
      : conv(register_module("conv", nn::Conv2d(nn::Conv2dOptions(3, 4, 3).bias(false)))),
        fc(register_module("fc", nn::Linear(4, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const bool grad = torch::GradMode::is_enabled();
    calls.push_back({grad, previous.expired()});
    torch::Tensor y = fc(torch::relu(conv(x)).mean({2, 3}));
    if (grad)
      previous = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(y.getIntrusivePtr());
    return y;
  }
  struct Call {
    bool grad;
    bool previous_freed;
  };
  nn::Conv2d conv;
  nn::Linear fc;
  std::vector<Call> calls;
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> previous{
      c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>()};
};
TORCH_MODULE(Recorder);

}  // namespace

TEST_CASE("Sequential mode back-propagates one input member of one branch at a time", "[self_competitor]") {
  torch::manual_seed(9);
  Recorder net;
  auto x1 = torch::randn({3, 3, 6, 6});
  auto x2 = torch::randn({3, 3, 6, 6});
  auto g = torch::tensor({1.0f, 0.0f, 1.0f});
  ohem::SelfCompetitor sc(
      net, ohem::PairwiseFidelityLoss{},
      ohem::SelfCompetitorOptions().num_twins(2).mode(ohem::SelfCompetitorMode::Sequential));
  auto r = sc(std::make_pair(x1, x2), g);
  // The forward: 2 members × (full + 2 twins), all without a graph.
  REQUIRE(net->calls.size() == 6);
  for (const auto& c : net->calls) CHECK_FALSE(c.grad);
  r.backward();
  // backward(): the same 6 forwards again, each with a graph, and each after the previous one's graph is
  // gone.
  REQUIRE(net->calls.size() == 12);
  for (size_t i = 6; i < 12; ++i) {
    INFO("forward " << i);
    CHECK(net->calls[i].grad);
    CHECK(net->calls[i].previous_freed);
  }
  for (const auto& p : net->parameters()) CHECK(p.grad().defined());
}

// ---------------------------------------------------------------------------------------------------------
// Recipe parity on a ResNet-style model.

namespace {

struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1(register_module(
            "conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(out))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)))),
        bn2(register_module("bn2", nn::BatchNorm2d(out))),
        down_conv(register_module("down_conv",
                                  nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)))),
        down_bn(register_module("down_bn", nn::BatchNorm2d(out))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + down_bn(down_conv(x)));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d down_conv;
  nn::BatchNorm2d down_bn;
};
TORCH_MODULE(BasicBlock);

// The recipe's BaseCNN in miniature: conv-BN-ReLU stem, a basic block with downsample, global average pool,
// L2 normalisation, Linear(→1) head.
struct TinyResNetImpl : nn::Module {
  TinyResNetImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(8))),
        block(register_module("block", BasicBlock(8, 16, 2))),
        fc(register_module("fc", nn::Linear(16, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = block(y);
    y = torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1);
    y = nn::functional::normalize(y, nn::functional::NormalizeFuncOptions().p(2).dim(1));
    return fc(y);
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  BasicBlock block;
  nn::Linear fc;
};
TORCH_MODULE(TinyResNet);

using TensorMap = std::map<std::string, torch::Tensor>;

// The model's forward written out with functional ops on explicit weights; `masks` multiplies the named
// weights (the pruned branch). Updates the running statistics in `stats` as BatchNorm in training mode.
torch::Tensor forward_by_hand(const TensorMap& w, TensorMap& stats, const torch::Tensor& x,
                              const TensorMap* masks) {
  auto weight = [&](const std::string& name) {
    torch::Tensor t = w.at(name);
    if (masks != nullptr && masks->count(name) != 0) t = t * masks->at(name);
    return t;
  };
  auto conv = [&](const torch::Tensor& in, const std::string& name, int64_t stride, int64_t pad) {
    return torch::conv2d(in, weight(name + ".weight"), {}, stride, pad);
  };
  auto bn = [&](const torch::Tensor& in, const std::string& name) {
    return torch::batch_norm(in, w.at(name + ".weight"), w.at(name + ".bias"),
                             stats.at(name + ".running_mean"), stats.at(name + ".running_var"),
                             /*training=*/true, /*momentum=*/0.1, /*eps=*/1e-5,
                             /*cudnn_enabled=*/false);
  };
  auto y = torch::relu(bn(conv(x, "conv1", 1, 1), "bn1"));
  auto z = torch::relu(bn(conv(y, "block.conv1", 2, 1), "block.bn1"));
  z = bn(conv(z, "block.conv2", 1, 1), "block.bn2");
  y = torch::relu(z + bn(conv(y, "block.down_conv", 2, 0), "block.down_bn"));
  y = y.mean({2, 3});
  y = y / y.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  return torch::addmm(w.at("fc.bias"), y, w.at("fc.weight").t());
}

double recipe_case(ohem::SelfCompetitorMode mode) {
  torch::manual_seed(2023);
  TinyResNet net;
  net->to(torch::kDouble);
  auto x1 = torch::randn({4, 3, 8, 8}, torch::kDouble);
  auto x2 = torch::randn({4, 3, 8, 8}, torch::kDouble);
  auto mos1 = torch::rand({4}, torch::kDouble), mos2 = torch::rand({4}, torch::kDouble);
  auto g = (mos1 > mos2).to(torch::kDouble);  // the official code's binary label

  // The hand computation starts from copies of the initial weights and statistics.
  TensorMap w, stats;
  for (const auto& p : net->named_parameters()) w[p.key()] = p.value().detach().clone().requires_grad_();
  for (const auto& b : net->named_buffers()) stats[b.key()] = b.value().detach().clone();

  // Masks by hand: global magnitude over every convolution weight, t = sorted(|w|)[min(ceil(0.65·N), N−1)].
  const std::vector<std::string> convs{"conv1.weight", "block.conv1.weight", "block.conv2.weight",
                                       "block.down_conv.weight"};
  std::vector<torch::Tensor> flat;
  for (const auto& n : convs) flat.push_back(w.at(n).detach().abs().reshape({-1}));
  auto sorted = std::get<0>(torch::cat(flat).sort());
  const int64_t n_all = sorted.numel();
  const int64_t k = std::min(static_cast<int64_t>(std::ceil(0.65 * static_cast<double>(n_all))), n_all - 1);
  const double t = sorted[k].item<double>();
  TensorMap masks;
  for (const auto& n : convs) masks[n] = (w.at(n).detach().abs() >= t).to(torch::kDouble);

  // The recipe's loss: four forwards (full/pruned × image 1/image 2), fidelity on both branches, MSE per
  // image.
  auto y1f = forward_by_hand(w, stats, x1, nullptr).reshape({-1});
  auto y2f = forward_by_hand(w, stats, x2, nullptr).reshape({-1});
  auto y1p = forward_by_hand(w, stats, x1, &masks).reshape({-1});
  auto y2p = forward_by_hand(w, stats, x2, &masks).reshape({-1});
  auto prob = [](const torch::Tensor& a, const torch::Tensor& b) {
    return 0.5 * (1 + torch::erf((a - b) / std::sqrt(2 * (1.0 + 1.0 + 1e-8))));
  };
  auto fidelity = [&](const torch::Tensor& p) {
    return (1 - torch::sqrt(p * g + 1e-8) - torch::sqrt((1 - p) * (1 - g) + 1e-8)).mean();
  };
  auto expected = fidelity(prob(y1f, y2f)) + fidelity(prob(y1p, y2p)) + (y1f - y1p).square().mean() +
                  (y2f - y2p).square().mean();
  expected.backward();

  // One Adam step (lr 1e-4, weight decay 5e-4) from zero state, written out: with g' = grad + wd·w,
  // m̂ = g' and sqrt(v̂) = |g'|, so w ← w − lr·g'/(|g'| + 1e-8).
  TensorMap stepped;
  for (const auto& [name, p] : w) {
    auto gp = p.grad() + 5e-4 * p.detach();
    stepped[name] = p.detach() - 1e-4 * gp / (gp.abs() + 1e-8);
  }

  // The library: the default self-competitor and the user's own Adam.
  ohem::SelfCompetitor sc(net, ohem::PairwiseFidelityLoss{}, ohem::SelfCompetitorOptions().mode(mode));
  for (const auto& n : convs) {
    INFO(n);
    CHECK(ohem_test::bit_identical(sc.twin().masks().at(n).to(torch::kDouble), masks.at(n)));
  }
  CHECK_FALSE(sc.twin().masks().contains("fc.weight"));
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  adam.zero_grad();
  auto r = sc(std::make_pair(x1, x2), g);
  r.backward();

  CHECK(r.total.item<double>() == Approx(expected.item<double>()).margin(1e-9));
  // What the result holds besides the loss: the recipe's task sum and every branch's predictions.
  const double task_sum = (fidelity(prob(y1f, y2f)) + fidelity(prob(y1p, y2p))).item<double>();
  CHECK(r.task_sum.item<double>() == Approx(task_sum).margin(1e-9));
  REQUIRE(r.full_prediction.size() == 2);
  REQUIRE(r.twin_predictions.size() == 1);
  REQUIRE(r.twin_predictions[0].size() == 2);
  CHECK(close(r.full_prediction[0].reshape({-1}), y1f.detach(), 0, 1e-9));
  CHECK(close(r.full_prediction[1].reshape({-1}), y2f.detach(), 0, 1e-9));
  CHECK(close(r.twin_predictions[0][0].reshape({-1}), y1p.detach(), 0, 1e-9));
  CHECK(close(r.twin_predictions[0][1].reshape({-1}), y2p.detach(), 0, 1e-9));
  CHECK_FALSE(r.full_prediction[0].requires_grad());
  // The mask statistics name the recipe's global threshold t.
  REQUIRE(sc.twin().masks().global_threshold().has_value());
  CHECK(*sc.twin().masks().global_threshold() == t);
  for (const auto& st : sc.twin().masks().stats()) CHECK(st.threshold == t);
  for (const auto& p : net->named_parameters()) {
    INFO(p.key());
    CHECK(close(p.value().grad(), w.at(p.key()).grad(), 0, 1e-9));
  }
  adam.step();
  for (const auto& p : net->named_parameters()) {
    INFO(p.key());
    CHECK(close(p.value(), stepped.at(p.key()), 0, 1e-9));
  }
  // BatchNorm statistics: shared, updated by all four forwards.
  for (const auto& b : net->named_buffers()) {
    INFO(b.key());
    if (b.key().find("num_batches_tracked") != std::string::npos) {
      CHECK(b.value().item<int64_t>() == 4);
    } else {
      CHECK(close(b.value(), stats.at(b.key()), 0, 1e-12));
    }
  }
  return r.total.item<double>();
}

}  // namespace

TEST_CASE("The default self-competitor reproduces the paper's recipe on a ResNet-style model",
          "[self_competitor][recipe]") {
  const double joint = recipe_case(ohem::SelfCompetitorMode::Joint);
  const double seq = recipe_case(ohem::SelfCompetitorMode::Sequential);
  CHECK(seq == joint);
}

// ---------------------------------------------------------------------------------------------------------
// TorchScript models (e.g. a backbone exported from Python) work the same way.

namespace {

struct ScriptOutcome {
  double total = 0;
  std::vector<torch::Tensor> grads, buffers;
};

ScriptOutcome script_step(ohem::SelfCompetitorMode mode, const torch::Tensor& x, const torch::Tensor& mos) {
  torch::manual_seed(99);
  torch::jit::Module net = ohem_test::script_net(ohem_test::ScriptNetOptions().dropout(true));
  ohem::SelfCompetitor sc(net, ohem::MosMSELoss{}, ohem::SelfCompetitorOptions().mode(mode));
  auto r = sc(x, mos);
  r.backward();
  ScriptOutcome o;
  o.total = r.total.item<double>();
  for (const auto& p : net.parameters()) o.grads.push_back(p.grad().clone());
  for (const auto& b : net.buffers()) o.buffers.push_back(b.clone());
  return o;
}

}  // namespace

TEST_CASE("SelfCompetitor runs a TorchScript module, Sequential equals Joint there too",
          "[self_competitor][jit]") {
  torch::manual_seed(3);
  auto x = torch::randn({5, 3, 6, 6}, torch::kDouble);
  auto mos = torch::rand({5}, torch::kDouble);
  auto joint = script_step(ohem::SelfCompetitorMode::Joint, x, mos);
  auto seq = script_step(ohem::SelfCompetitorMode::Sequential, x, mos);
  CHECK(seq.total == Approx(joint.total).margin(1e-12));
  REQUIRE(joint.grads.size() == 4 + 2);
  for (size_t i = 0; i < joint.grads.size(); ++i) CHECK(close(seq.grads[i], joint.grads[i], 0, 1e-6));
  REQUIRE(joint.buffers.size() == 2);
  for (size_t i = 0; i < joint.buffers.size(); ++i) CHECK(close(seq.buffers[i], joint.buffers[i], 0, 1e-12));
}
