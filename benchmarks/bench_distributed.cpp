// Data-parallel OHEM throughput (not a Google Benchmark: it runs as N processes). One OHEM Joint step of
// the recipe's model (ResNet-18 → GAP → L2 → Linear; full + 1 twin; pairwise fidelity; Adam) per iteration.
//
//   bench_distributed --threads=2                         1 process x 2 threads
//   bench_distributed --threads=1                         1 process x 1 thread
//   scripts/launch.sh 2 bench_distributed --threads=1     2 processes x 1 thread (Gloo on 127.0.0.1)
// Options (--help lists them): --batch=B pairs per rank (4), --size=S image side (64), --steps=N timed steps
// (6), --warmup=N (2), --first=on|off which configuration runs first with 2+ processes (on).
//
// Prints pairs/s (all ranks together), and with 2+ processes the all-reduce time of ResNet-18's gradients
// alone (every bucket launched after backward: DistributedDataParallelOptions::overlap(false)), the time
// sync_gradients() still blocks when the buckets are launched during backward (overlap on), and the share
// of communication hidden behind backward = 1 − blocked / alone. Both times are those of the rank whose
// backward ended last, step by step: a rank that ended earlier also waits for the others' backward, which
// is imbalance (printed as the skew), not communication. Also the CPU time (all threads of the
// process) that the all-reduce alone costs, and the step time overlap saves, (step off − step on) / alone:
// communication that competes with backward for the same cores shortens sync_gradients() by lengthening
// backward, which the first figure counts as hidden and the second does not.
// --bucket-mb=M and --last-bucket-mb=M set DistributedDataParallelOptions::bucket_cap_mb (25) and
// last_bucket_cap_mb (1).
#include <ohem/distributed.hpp>
#include <ohem/runtime.hpp>
#include <ohem/task_losses.hpp>
#include <toolkit/backbones.hpp>
#include <toolkit/threads.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

struct BaseCnnImpl : torch::nn::Module {
  BaseCnnImpl() {
    backbone = register_module("backbone", ohem_examples::ResNet(ohem_examples::ResNetOptions("resnet18")));
    head = register_module("head", torch::nn::Linear(512, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto f = backbone->forward(x);
    return head
        ->forward(torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1)))
        .reshape({-1});
  }
  ohem_examples::ResNet backbone{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(BaseCnn);

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Timing {
  double step = 0;               // median seconds per step
  double blocked = 0;            // median seconds in sync_gradients() of the rank whose backward ended last
  double skew = 0;               // median difference between the ranks' times in sync_gradients()
  double during = 0;             // share of bytes launched during backward (last step)
  double cpu = 0;                // median CPU seconds (all threads of the process) spent in sync_gradients()
  std::vector<int64_t> buckets;  // bytes per gradient bucket, in launch order
};

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

Timing run(const ohem::DistributedContext& dist, BaseCnn& net, bool overlap, double bucket_mb,
           double last_bucket_mb, int64_t batch, int64_t size, int steps, int warmup) {
  ohem::DistributedDataParallel ddp(
      dist, net,
      ohem::DistributedDataParallelOptions().overlap(overlap).bucket_cap_mb(bucket_mb).last_bucket_cap_mb(
          last_bucket_mb));
  ohem::SelfCompetitor sc(net, ohem::PairwiseFidelityLoss{});
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(17 + dist.rank()));
  torch::Tensor x1 = torch::randn({batch, 3, size, size}, gen),
                x2 = torch::randn({batch, 3, size, size}, gen);
  torch::Tensor g = torch::rand({batch}, gen).gt(0.5).to(torch::kFloat);
  std::vector<double> step_s, sync_s, cpu_s;
  Timing t;
  t.buckets = ddp.bucket_bytes();
  for (int i = 0; i < warmup + steps; ++i) {
    dist.barrier();
    const auto start = std::chrono::steady_clock::now();
    opt.zero_grad();
    sc(std::make_pair(x1, x2), g).backward();
    const double cpu0 = process_cpu_seconds();
    ddp.sync_gradients();
    const double cpu1 = process_cpu_seconds();
    opt.step();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= warmup) {
      step_s.push_back(s);
      sync_s.push_back(ddp.last_stats().sync_seconds);
      cpu_s.push_back(cpu1 - cpu0);
    }
    const auto st = ddp.last_stats();
    t.during = st.bytes_total > 0 ? static_cast<double>(st.bytes_during_backward) / st.bytes_total : 0.0;
  }
  // Per step, across ranks: the step time of the slowest rank; the blocking time of the rank that
  // finished backward last (the minimum): a rank that finished earlier also waits in sync_gradients() for
  // the others' backward, which is imbalance between the ranks, not communication; that difference
  // (maximum − minimum) is reported as the skew. Then medians over the steps.
  auto per_step = [&](const std::vector<double>& v, c10d::ReduceOp op) {
    torch::Tensor all = dist.all_reduce(torch::tensor(v, torch::kDouble), op);
    return std::vector<double>(all.data_ptr<double>(), all.data_ptr<double>() + all.numel());
  };
  const std::vector<double> slowest = per_step(step_s, c10d::ReduceOp::MAX),
                            last_done = per_step(sync_s, c10d::ReduceOp::MIN),
                            first_done = per_step(sync_s, c10d::ReduceOp::MAX);
  std::vector<double> skew(sync_s.size());
  for (size_t i = 0; i < skew.size(); ++i) skew[i] = first_done[i] - last_done[i];
  t.step = median(slowest);
  t.blocked = median(last_done);
  t.skew = median(skew);
  t.cpu = dist.all_reduce(torch::tensor({median(cpu_s)}, torch::kDouble), c10d::ReduceOp::MAX).item<double>();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Data-parallel OHEM Joint step throughput and gradient all-reduce overlap (ResNet-18 + head, one "
      "twin, Adam). Run as one process, or as N under scripts/launch.sh N or torchrun.");
  app.get_formatter()->column_width(34);
  int threads = 1, steps = 6, warmup = 2;
  std::string heap_mode = "training";
  int64_t batch = 4, size = 64;
  double bucket_mb = 25, last_bucket_mb = 1;
  std::string first = "on";
  ohem_examples::add_threads_option(app, threads, "torch threads per process");
  app.add_option("--heap", heap_mode,
                 "training: glibc's heap set up as every ohem program does (ohem::tune_heap_for_training); "
                 "default: glibc's defaults")
      ->check(CLI::IsMember({"training", "default"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "pairs per rank and step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--size", size, "image side in pixels")->check(CLI::Range(32, 4096))->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--bucket-mb", bucket_mb, "DistributedDataParallelOptions::bucket_cap_mb")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--last-bucket-mb", last_bucket_mb, "DistributedDataParallelOptions::last_bucket_cap_mb")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  // --first=off measures the no-overlap configuration first (a process's first steps can be slower: the
  // allocator and the thread pools warm up), so that the order of the two runs can be checked.
  app.add_option("--first", first, "which configuration runs first with 2+ processes")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const std::string heap = heap_mode == "training" ? ohem::tune_heap_for_training().description
                                                   : std::string("heap: glibc's defaults (--heap default)");
  ohem::DistributedContext dist = ohem::DistributedContext::from_env();
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  BaseCnn net;
  int64_t numel = 0;
  for (const auto& p : net->parameters()) numel += p.numel();
  const int world = dist.world_size();
  const bool off_first = first == "off";
  Timing on, off;
  if (off_first && world > 1)
    off = run(dist, net, false, bucket_mb, last_bucket_mb, batch, size, steps, warmup);
  on = run(dist, net, true, bucket_mb, last_bucket_mb, batch, size, steps, warmup);
  if (!off_first && world > 1)
    off = run(dist, net, false, bucket_mb, last_bucket_mb, batch, size, steps, warmup);
  if (dist.is_main()) {
    std::printf(
        "processes x threads: %d x %d, LibTorch %s, %lld parameters, batch %lld pairs/rank at %lld px\n",
        world, threads, TORCH_VERSION, static_cast<long long>(numel), static_cast<long long>(batch),
        static_cast<long long>(size));
    std::printf("%s\n", heap.c_str());
    std::printf("OHEM Joint step: %.1f ms, %.2f pairs/s\n", on.step * 1e3,
                static_cast<double>(batch * world) / on.step);
  }
  if (world > 1 && dist.is_main()) {
    std::string layout;
    for (int64_t b : on.buckets) layout += (layout.empty() ? "" : " + ") + std::to_string(b / 1000) + " kB";
    std::printf("gradient buckets (launch order; --bucket-mb=%g --last-bucket-mb=%g): %s\n", bucket_mb,
                last_bucket_mb, layout.c_str());
    const double hidden = off.blocked > 0 ? std::max(0.0, 1.0 - on.blocked / off.blocked) : 0.0;
    std::printf(
        "all-reduce of the gradients alone (overlap off, in sync_gradients): %.1f ms per step, of which "
        "%.1f ms of CPU time in this process (%.0f%% busy: the rest waits for the peer); the ranks' "
        "backward ended %.1f ms apart (skew, not counted)\n",
        off.blocked * 1e3, off.cpu * 1e3, off.blocked > 0 ? 100.0 * off.cpu / off.blocked : 0.0,
        off.skew * 1e3);
    std::printf(
        "still blocking with overlap on: %.1f ms per step (%.0f%% of the bytes launched during backward; "
        "skew %.1f ms)\n",
        on.blocked * 1e3, on.during * 100, on.skew * 1e3);
    const double saved = off.blocked > 0 ? (off.step - on.step) / off.blocked : 0.0;
    std::printf(
        "communication hidden behind backward: %.0f%%; step without overlap: %.1f ms (%.2f pairs/s); "
        "step time saved by overlap: %.1f ms = %.0f%% of the all-reduce time\n",
        hidden * 100, off.step * 1e3, static_cast<double>(batch * world) / off.step,
        (off.step - on.step) * 1e3, saved * 100);
  }
  dist.barrier();
  return 0;
}
