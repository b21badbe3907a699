// One rank of the multi-process tests of ohem/distributed.hpp. Launched N times (scripts/launch.sh 2 ...,
// or torchrun --no-python), it runs one scenario and exits 0 if every check held on this rank.
//
//   dist_worker identical   after OHEM steps (Joint, Sequential, accumulation, BatchNorm) the ranks'
//                           parameters and buffers are bitwise identical
//   dist_worker gradients   one 2-process step = one 1-process step on the concatenated batch (float64,
//                           1e-10), Joint/Sequential x 1/2 twins, frozen layer, unfreezing, accumulation,
//                           backward run inside an autograd node; 3+ steps (overlap after the first)
//   dist_worker masks       masks identical after refresh + broadcast; a forced mismatch is detected
//   dist_worker gather      sampler shards, gathered hardness covers each sample once, sharded evaluation
//   dist_worker dies        rank 1 exits mid-step: rank 0 fails with a clear error within the timeout
//   dist_worker stalls      rank 1 stops taking part: rank 0 fails on the timeout, no hang
#include <ohem/distributed.hpp>
#include <ohem/metrics.hpp>
#include <ohem/task_losses.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace nn = torch::nn;
int failures = 0;

#define EXPECT(cond, ...)                                                                     \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      ++failures;                                                                             \
      std::fprintf(stderr, "[rank %d] FAILED %s:%d: %s ", g_rank, __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                      \
      std::fprintf(stderr, "\n");                                                             \
    }                                                                                         \
  } while (0)
int g_rank = -1;

nn::Sequential make_net(bool batchnorm, torch::Dtype dtype) {
  torch::manual_seed(7);  // the same initial weights in every process
  nn::Sequential net;
  net->push_back(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).padding(1)));
  if (batchnorm) net->push_back(nn::BatchNorm2d(6));
  net->push_back(nn::ReLU());
  net->push_back(nn::Conv2d(nn::Conv2dOptions(6, 8, 3).stride(2)));
  if (batchnorm) net->push_back(nn::BatchNorm2d(8));
  net->push_back(nn::ReLU());
  net->push_back(nn::AdaptiveAvgPool2d(1));
  net->push_back(nn::Flatten());
  net->push_back(nn::Linear(8, 1));
  net->to(dtype);
  return net;
}

void copy_params(nn::Sequential& to, nn::Sequential& from) {
  torch::NoGradGuard no_grad;
  auto a = to->parameters(), b = from->parameters();
  for (size_t i = 0; i < a.size(); ++i) a[i].copy_(b[i]);
}

struct Batch {
  torch::Tensor x1, x2, g;
  Batch rows(int64_t begin, int64_t n) const {
    return {x1.narrow(0, begin, n), x2.narrow(0, begin, n), g.narrow(0, begin, n)};
  }
};

Batch make_batch(int64_t seed, int64_t n, torch::Dtype dtype) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  Batch b;
  b.x1 = torch::randn({n, 3, 8, 8}, gen, torch::TensorOptions().dtype(dtype));
  b.x2 = torch::randn({n, 3, 8, 8}, gen, torch::TensorOptions().dtype(dtype));
  b.g = torch::rand({n}, gen, torch::TensorOptions().dtype(dtype)).gt(0.5).to(dtype);
  return b;
}

using SC = ohem::SelfCompetitor<nn::Sequential, ohem::PairwiseFidelityLoss>;

// Every rank's copy of `t`, compared bitwise with rank 0's.
bool same_on_all_ranks(const ohem::DistributedContext& dist, const torch::Tensor& t) {
  torch::Tensor all = dist.all_gather_cat(t.detach().reshape({1, -1}));
  bool same = true;
  for (int r = 1; r < dist.world_size(); ++r) same = same && torch::equal(all[0], all[r]);
  return same;
}

torch::Tensor flat(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : ts) parts.push_back(t.detach().reshape({-1}).to(torch::kDouble));
  return torch::cat(parts);
}

int scenario_identical(ohem::DistributedContext& dist) {
  nn::Sequential net = make_net(true, torch::kFloat);
  // A different initialisation on rank 1: the constructor's broadcast must fix it.
  if (dist.rank() == 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.add_(0.5);
  }
  ohem::DistributedDataParallel ddp(dist, net, ohem::DistributedDataParallelOptions().bucket_cap_mb(0.001));
  SC sc(net, ohem::PairwiseFidelityLoss{});
  ohem::sync_masks(dist, sc);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 4; ++step) {
    Batch b = make_batch(100 + step * 10 + dist.rank(), 4, torch::kFloat);
    opt.zero_grad();
    sc(std::make_pair(b.x1, b.x2), b.g).backward();
    ddp.sync_gradients();
    opt.step();
  }
  SC seq(net, ohem::PairwiseFidelityLoss{},
         ohem::SelfCompetitorOptions().mode(ohem::SelfCompetitorMode::Sequential).num_twins(2));
  ohem::sync_masks(dist, seq);
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    {
      auto guard = ddp.no_sync();
      Batch b = make_batch(200 + step * 10 + dist.rank(), 4, torch::kFloat);
      seq(std::make_pair(b.x1, b.x2), b.g).backward();
    }
    Batch b = make_batch(300 + step * 10 + dist.rank(), 4, torch::kFloat);
    seq(std::make_pair(b.x1, b.x2), b.g).backward();
    ddp.sync_gradients();
    opt.step();
  }
  EXPECT(ddp.num_buckets() > 1, "expected several buckets with a 1 kB cap, got %zu", ddp.num_buckets());
  const bool params_same = same_on_all_ranks(dist, flat(net->parameters()));
  const bool buffers_same = same_on_all_ranks(dist, flat(net->buffers()));
  EXPECT(params_same, "parameters differ between ranks after 7 steps");
  EXPECT(buffers_same, "BatchNorm buffers differ between ranks after 7 steps");
  // And the ranks did see different data: their local losses differ.
  Batch b = make_batch(999 + dist.rank(), 4, torch::kFloat);
  torch::Tensor loss;
  {
    torch::NoGradGuard no_grad;
    net->eval();
    loss = sc(std::make_pair(b.x1, b.x2), b.g).total.reshape({1});
  }
  EXPECT(!same_on_all_ranks(dist, loss),
         "the ranks' losses on their own data are equal: the test is vacuous");
  return 0;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].defined() != b[i].defined()) return 1e300;
    if (!a[i].defined()) continue;
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  }
  return worst;
}

std::vector<torch::Tensor> grads_of(nn::Sequential& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters())
    out.push_back(p.grad().defined() ? p.grad().detach().clone() : torch::Tensor());
  return out;
}

// Runs a result's backward from inside an autograd node's backward (a nested engine call), as a
// Sequential-mode replay run by a custom node of `total`'s graph does.
struct ReplayInNode : torch::autograd::Function<ReplayInNode> {
  static std::function<void()>& pending() {
    static std::function<void()> f;
    return f;
  }
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) {
    return x.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list) {
    auto f = std::move(pending());
    pending() = nullptr;
    // The engine runs backward functions without grad mode; a replay re-runs forwards with a graph.
    torch::AutoGradMode grad_mode(true);
    f();
    return {torch::Tensor()};
  }
};

void backward_in_node(const ohem::OhemLossResult& r) {
  ReplayInNode::pending() = [r] { r.backward(); };
  torch::Tensor trigger = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).requires_grad(true));
  ReplayInNode::apply(trigger).backward();
}

void run_gradient_case(ohem::DistributedContext& dist, ohem::SelfCompetitorMode mode, int64_t twins,
                       bool freeze, bool accumulate, bool unfreeze = false, bool in_node = false) {
  const std::string name =
      std::string(ohem::to_string(mode)) + ", " + std::to_string(twins) + " twin(s)" +
      (freeze ? (unfreeze ? ", first conv unfrozen at step 1" : ", frozen first conv") : "") +
      (accumulate ? ", 2 micro-batches" : "") + (in_node ? ", backward inside an autograd node" : "");
  nn::Sequential net = make_net(false, torch::kDouble), ref = make_net(false, torch::kDouble);
  copy_params(ref, net);
  if (freeze) {
    net[0]->parameters()[0].requires_grad_(false);
    ref[0]->parameters()[0].requires_grad_(false);
  }
  ohem::DistributedDataParallel ddp(dist, net);
  auto opts = ohem::SelfCompetitorOptions().mode(mode).num_twins(twins);
  if (twins > 1) opts.twin().masks().random_fraction(0.1);  // K different masks
  SC sc(net, ohem::PairwiseFidelityLoss{}, opts), sc_ref(ref, ohem::PairwiseFidelityLoss{}, opts);
  torch::optim::SGD opt(net->parameters(), 0.1), opt_ref(ref->parameters(), 0.1);
  const int64_t per_rank = 3, world = dist.world_size();
  // After unfreezing, the leaf gets its hook at the end of that step, its count one step later: steps 1
  // and 2 all-reduce again in sync_gradients(), step 3 is overlapped again.
  const int steps = unfreeze ? 4 : 3;
  for (int step = 0; step < steps; ++step) {
    if (unfreeze && step == 1) {
      net[0]->parameters()[0].requires_grad_(true);
      ref[0]->parameters()[0].requires_grad_(true);
    }
    opt.zero_grad();
    opt_ref.zero_grad();
    const int micro = accumulate ? 2 : 1;
    for (int m = 0; m < micro; ++m) {
      Batch all = make_batch(1000 + step * 10 + m, per_rank * world, torch::kDouble);
      Batch mine = all.rows(dist.rank() * per_rank, per_rank);
      if (m + 1 < micro) {
        auto guard = ddp.no_sync();
        sc(std::make_pair(mine.x1, mine.x2), mine.g).backward();
      } else if (in_node) {
        backward_in_node(sc(std::make_pair(mine.x1, mine.x2), mine.g));
      } else {
        sc(std::make_pair(mine.x1, mine.x2), mine.g).backward();
      }
      sc_ref(std::make_pair(all.x1, all.x2), all.g).backward();
    }
    ddp.sync_gradients();
    const double d = max_diff(grads_of(net), grads_of(ref));
    EXPECT(d <= 1e-10, "%s, step %d: gradients differ from the 1-process step by %g", name.c_str(), step, d);
    const auto st = ddp.last_stats();
    if (unfreeze && step == 1) {
      EXPECT(st.rebuilt, "%s, step %d: a newly unfrozen leaf did not make the step all-reduce again",
             name.c_str(), step);
    } else if (step >= (unfreeze ? 3 : 1)) {
      EXPECT(!st.rebuilt, "%s, step %d: the buckets were all-reduced again although nothing changed",
             name.c_str(), step);
      EXPECT(st.bytes_during_backward > 0, "%s, step %d: nothing was launched during backward", name.c_str(),
             step);
    }
    opt.step();
    opt_ref.step();
  }
  std::printf("[rank %d] gradients OK: %s\n", dist.rank(), name.c_str());
}

int scenario_gradients(ohem::DistributedContext& dist) {
  for (auto mode : {ohem::SelfCompetitorMode::Joint, ohem::SelfCompetitorMode::Sequential}) {
    for (int64_t twins : {1, 2}) run_gradient_case(dist, mode, twins, false, false);
  }
  run_gradient_case(dist, ohem::SelfCompetitorMode::Joint, 1, true, false);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Sequential, 2, true, true);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Joint, 1, false, true);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Joint, 1, true, false, true);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Sequential, 1, true, false, true);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Sequential, 2, false, false, false, true);
  run_gradient_case(dist, ohem::SelfCompetitorMode::Joint, 1, false, false, false, true);
  return 0;
}

int scenario_masks(ohem::DistributedContext& dist) {
  nn::Sequential net = make_net(true, torch::kFloat);
  ohem::DistributedDataParallel ddp(dist, net);
  SC sc(net, ohem::PairwiseFidelityLoss{}, ohem::SelfCompetitorOptions().num_twins(2));
  // Rank 1 computes its masks from other weights: after the broadcast they are rank 0's.
  if (dist.rank() == 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.mul_(-1.7).add_(0.3);
    sc.refresh();
  }
  bool threw = false;
  try {
    ohem::sync_masks(dist, sc, ohem::MaskSync::Check);
  } catch (const c10::Error& e) {
    threw = std::string(e.what()).find("differs between ranks") != std::string::npos;
  }
  EXPECT(threw, "sync_masks(Check) did not detect masks computed from different weights");
  ohem::sync_masks(dist, sc, ohem::MaskSync::Broadcast);
  for (size_t k = 0; k < sc.num_twins(); ++k) {
    const auto& m = sc.twin(k).masks();
    for (size_t i = 0; i < m.size(); ++i)
      EXPECT(same_on_all_ranks(dist, m.mask(i).to(torch::kByte)), "twin %zu mask %s differs after broadcast",
             k, m.name(i).c_str());
  }
  bool ok = true;
  try {
    ohem::sync_masks(dist, sc, ohem::MaskSync::Check);
  } catch (const c10::Error& e) {
    ok = false;
    std::fprintf(stderr, "%s\n", e.what());
  }
  EXPECT(ok, "sync_masks(Check) failed on identical masks");
  // Forced mismatch: rank 1 flips one weight of twin 1's second mask.
  if (dist.rank() == 1) {
    ohem::MaskSet changed;
    const auto& m = sc.twin(1).masks();
    for (size_t i = 0; i < m.size(); ++i) {
      torch::Tensor t = m.mask(i).clone();
      if (i == 1) t.view({-1})[5] = !t.view({-1})[5].item<bool>();
      changed.add(m.name(i), t);
    }
    sc.twin(1).set_masks(changed);
  }
  std::string message;
  try {
    ohem::sync_masks(dist, sc, ohem::MaskSync::Check);
  } catch (const c10::Error& e) {
    message = e.what();
  }
  const std::string layer = sc.twin(1).masks().name(1);
  EXPECT(message.find("twin 1's mask of layer \"" + layer + "\" differs between ranks") != std::string::npos,
         "no clear mismatch error naming twin 1 and layer %s, got: %s", layer.c_str(), message.c_str());
  if (dist.is_main()) std::printf("mismatch error: %s\n", message.substr(0, message.find('\n')).c_str());
  return 0;
}

int scenario_gather(ohem::DistributedContext& dist) {
  // Sampler: disjoint shards covering [0, n) (with padding only at the tail), reshuffled per epoch.
  for (int64_t n : {10, 11}) {
    ohem::DistributedSampler sampler(n, dist, ohem::DistributedSamplerOptions().seed(5));
    ohem::HardnessTracker tracker(n);
    std::vector<torch::Tensor> orders;
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      tracker.reset();
      std::vector<int64_t> idx = sampler.indices(epoch);
      EXPECT(static_cast<int64_t>(idx.size()) == (n + 1) / 2, "shard size %zu", idx.size());
      torch::Tensor marked = torch::tensor(idx, torch::kLong);
      if (sampler.counted() < marked.numel())
        marked.narrow(0, sampler.counted(), marked.numel() - sampler.counted()).fill_(-1);
      // Two "batches" per epoch, hardness a known function of the index.
      const int64_t half = marked.numel() / 2;
      for (auto part : {marked.narrow(0, 0, half), marked.narrow(0, half, marked.numel() - half)}) {
        torch::Tensor h = part.to(torch::kDouble) * 0.5 + static_cast<double>(epoch);
        ohem::gather_hardness(dist, tracker, part, h);
      }
      torch::Tensor gathered = dist.all_gather_cat(marked);
      torch::Tensor real = gathered.masked_select(gathered.ge(0));
      EXPECT(torch::equal(std::get<0>(real.sort()), torch::arange(n, torch::kLong)),
             "n=%lld epoch %lld: the shards are not a partition of [0, n)", (long long)n, (long long)epoch);
      orders.push_back(gathered);
      if (dist.is_main()) {
        for (int64_t i = 0; i < n; ++i) {
          EXPECT(tracker.count(i) == 1, "n=%lld: sample %lld recorded %lld times", (long long)n, (long long)i,
                 (long long)tracker.count(i));
          EXPECT(tracker.hardness(i) == 0.5 * i + epoch, "sample %lld hardness %g", (long long)i,
                 tracker.hardness(i));
        }
      } else {
        EXPECT(tracker.ranking().empty(), "a non-main rank's tracker was filled");
      }
    }
    EXPECT(!torch::equal(orders[0], orders[1]), "n=%lld: epochs 0 and 1 have the same order", (long long)n);
  }
  // Sharded evaluation: every rank predicts its contiguous share, rank 0 computes the metrics.
  const int64_t n = 37;
  nn::Sequential net = make_net(false, torch::kDouble);
  net->eval();
  Batch data = make_batch(77, n, torch::kDouble);
  torch::Tensor mos = torch::linspace(0, 1, n, torch::kDouble) + 0.3 * data.g;
  auto [begin, end] = dist.shard(n);
  torch::Tensor mine;
  {
    torch::NoGradGuard no_grad;
    mine = net->forward(data.x1.narrow(0, begin, end - begin)).reshape({-1});
  }
  torch::Tensor gathered = dist.all_gather_cat(mine);
  if (dist.is_main()) {
    torch::Tensor single;
    {
      torch::NoGradGuard no_grad;
      single = net->forward(data.x1).reshape({-1});
    }
    EXPECT(gathered.numel() == n, "gathered %lld predictions", (long long)gathered.numel());
    const double dp = (gathered - single).abs().max().item<double>();
    EXPECT(dp <= 1e-12, "gathered predictions differ from single-process ones by %g", dp);
    std::vector<double> a(gathered.data_ptr<double>(), gathered.data_ptr<double>() + n);
    std::vector<double> s(single.data_ptr<double>(), single.data_ptr<double>() + n);
    std::vector<double> m(mos.data_ptr<double>(), mos.data_ptr<double>() + n);
    const double srcc_d = ohem::srcc(a, m), srcc_s = ohem::srcc(s, m);
    const double plcc_d = ohem::plcc(a, m), plcc_s = ohem::plcc(s, m);
    EXPECT(std::abs(srcc_d - srcc_s) <= 1e-12 && std::abs(plcc_d - plcc_s) <= 1e-12,
           "metrics differ: SRCC %.15f vs %.15f, PLCC %.15f vs %.15f", srcc_d, srcc_s, plcc_d, plcc_s);
    std::printf("sharded evaluation: SRCC %.6f PLCC %.6f (single process %.6f %.6f)\n", srcc_d, plcc_d,
                srcc_s, plcc_s);
  }
  // run_on_main: an exception on rank 0 reaches every rank.
  bool rank0_error = false;
  try {
    dist.run_on_main([] { throw std::runtime_error("disk full"); });
  } catch (const std::exception& e) {
    rank0_error = dist.is_main() ? std::string(e.what()) == "disk full"
                                 : std::string(e.what()).find("rank 0 failed") != std::string::npos;
  }
  EXPECT(rank0_error, "run_on_main did not propagate rank 0's failure");
  return 0;
}

// A peer that exits (`stall` false) or stops taking part (`stall` true) in the middle of a step.
int scenario_failure(ohem::DistributedContext& dist, bool stall) {
  nn::Sequential net = make_net(true, torch::kFloat);
  ohem::DistributedDataParallel ddp(dist, net);
  SC sc(net, ohem::PairwiseFidelityLoss{});
  Batch b = make_batch(5 + dist.rank(), 4, torch::kFloat);
  auto r = sc(std::make_pair(b.x1, b.x2), b.g);
  if (dist.rank() == 1) {
    if (stall) std::this_thread::sleep_for(dist.options().timeout() + std::chrono::seconds(4));
    std::printf("[rank 1] %s mid-step\n", stall ? "stopped taking part" : "exiting");
    std::fflush(stdout);
    std::_Exit(0);  // as a crash would: no destructor, sockets closed by the kernel
  }
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    r.backward();
    ddp.sync_gradients();
  } catch (const c10::Error& e) {
    message = e.what();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double limit = std::chrono::duration<double>(dist.options().timeout()).count() + 5.0;
  EXPECT(!message.empty(), "rank 0 did not fail although rank 1 is gone");
  EXPECT(message.find("ohem::distributed") != std::string::npos &&
             message.find("rank 0 of 2") != std::string::npos,
         "the error does not say what failed where: %s", message.c_str());
  EXPECT(s < limit, "rank 0 took %.1f s to fail (limit %.1f s)", s, limit);
  std::printf("[rank 0] failed after %.2f s with: %s\n", s, message.substr(0, message.find('\n')).c_str());
  std::fflush(stdout);
  // The backend's threads may still wait on the dead peer: leave without destructors.
  std::_Exit(failures == 0 ? 0 : 1);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  std::map<std::string, std::function<int(ohem::DistributedContext&)>> scenarios{
      {"identical", scenario_identical},
      {"gradients", scenario_gradients},
      {"masks", scenario_masks},
      {"gather", scenario_gather},
      {"dies", [](ohem::DistributedContext& d) { return scenario_failure(d, false); }},
      {"stalls", [](ohem::DistributedContext& d) { return scenario_failure(d, true); }},
  };
  auto it = scenarios.find(scenario);
  if (it == scenarios.end()) {
    std::fprintf(stderr,
                 "usage: dist_worker identical|gradients|masks|gather|dies|stalls (under a launcher)\n");
    return 2;
  }
  torch::set_num_threads(1);
  try {
    const bool failure_test = scenario == "dies" || scenario == "stalls";
    auto options = ohem::DistributedOptions().timeout(
        failure_test ? std::chrono::seconds(scenario == "stalls" ? 3 : 20) : std::chrono::seconds(30));
    ohem::DistributedContext dist = ohem::DistributedContext::from_env(options);
    g_rank = dist.rank();
    if (dist.world_size() < 2) {
      std::fprintf(stderr, "dist_worker: run under a launcher with 2 or more processes (WORLD_SIZE=%d)\n",
                   dist.world_size());
      return 2;
    }
    it->second(dist);
    dist.barrier();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", g_rank, e.what());
    return 1;
  }
  if (failures == 0) std::printf("[rank %d] %s: all checks passed\n", g_rank, scenario.c_str());
  return failures == 0 ? 0 : 1;
}
