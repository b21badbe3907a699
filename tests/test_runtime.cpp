// Process settings for training (ohem/runtime.hpp): the heap helper, the core count, a training step
// that faults in no new pages once warm; and the masked gradient written in place only when no one else
// can see it (MaskedWeightBackward).
#include "support.hpp"

#include <ohem/detail/twin_core.hpp>
#include <ohem/runtime.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace nn = torch::nn;

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Counts the CPUs in /proc/self/status's Cpus_allowed_list ("0-3,6"): independent of sched_getaffinity.
int allowed_cpus_from_proc() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
    std::stringstream list(line.substr(line.find(':') + 1));
    std::string range;
    int n = 0;
    while (std::getline(list, range, ',')) {
      const auto dash = range.find('-');
      n += dash == std::string::npos
               ? 1
               : std::stoi(range.substr(dash + 1)) - std::stoi(range.substr(0, dash)) + 1;
    }
    return n;
  }
  return 0;
}

}  // namespace

TEST_CASE("tune_heap_for_training sets glibc's heap up and says what it set", "[runtime]") {
#if defined(__GLIBC__)
  for (const char* v : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"}) unsetenv(v);
  const ohem::HeapTuning t = ohem::tune_heap_for_training();
  CHECK(t.applied);
  CHECK(t.description == "heap: glibc, trim off, mmap threshold 32 MiB, top pad 256 MiB");
  // A variable the user set is the user's choice: left alone and named.
  setenv("MALLOC_TOP_PAD_", "1048576", 1);
  const ohem::HeapTuning u = ohem::tune_heap_for_training(ohem::HeapOptions().mmap_threshold(4 << 20));
  unsetenv("MALLOC_TOP_PAD_");
  CHECK(u.applied);
  CHECK(u.description ==
        "heap: glibc, trim off, mmap threshold 4 MiB (from the environment: MALLOC_TOP_PAD_=1048576)");
  ohem::tune_heap_for_training();  // back to the defaults for the rest of this process
#else
  const ohem::HeapTuning t = ohem::tune_heap_for_training();
  CHECK_FALSE(t.applied);
  CHECK(t.description.find("not glibc") != std::string::npos);
#endif
  CHECK_THROWS_WITH(ohem::tune_heap_for_training(ohem::HeapOptions().mmap_threshold(int64_t{64} << 20)),
                    Catch::Contains("mmap_threshold must be in [0, 32 MiB], got 67108864"));
  CHECK_THROWS_WITH(ohem::tune_heap_for_training(ohem::HeapOptions().trim_threshold(-2)),
                    Catch::Contains("trim_threshold must be -1 (never) or in [0, 2^31), got -2"));
}

TEST_CASE("available_cores counts the CPUs this process may run on", "[runtime]") {
  const int proc = allowed_cpus_from_proc();
  if (proc == 0) OHEM_SKIP("no Cpus_allowed_list in /proc/self/status");
  CHECK(ohem::available_cores() == proc);
}

TEST_CASE("a warm self-competitor training step faults in almost no new pages with the tuned heap",
          "[runtime]") {
#if !defined(__GLIBC__)
  OHEM_SKIP("the heap settings are glibc's");
#else
  for (const char* v : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"}) unsetenv(v);
  REQUIRE(ohem::tune_heap_for_training().applied);
  torch::manual_seed(0);
  // Activations of several MB per layer (8 × 16 × 96 × 96 floats = 4.7 MB): above glibc's default mmap
  // threshold, as a real backbone's are.
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1)), nn::BatchNorm2d(16), nn::ReLU(),
                     nn::Conv2d(nn::Conv2dOptions(16, 32, 3).stride(2).padding(1)), nn::BatchNorm2d(32),
                     nn::ReLU(), nn::AdaptiveAvgPool2d(1), nn::Flatten(), nn::Linear(32, 1));
  ohem::SelfCompetitor sc(net, ohem::MosMSELoss{});
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4));
  const torch::Tensor x = torch::randn({8, 3, 96, 96});
  const torch::Tensor mos = torch::rand({8});
  auto step = [&] {
    opt.zero_grad();
    ohem::OhemLossResult r = sc(x, mos);
    r.backward();
    opt.step();
  };
  for (int i = 0; i < 4; ++i) step();  // warm-up: the heap grows to the step's peak
  // Per-step faults of the next steps; the median, so that one step that still grows the heap (a lazy
  // allocation elsewhere in the process) does not decide.
  std::vector<long> faults;
  for (int i = 0; i < 7; ++i) {
    const long before = minor_faults();
    step();
    faults.push_back(minor_faults() - before);
  }
  std::sort(faults.begin(), faults.end());
  const long median = faults[faults.size() / 2];
  // On glibc's default heap the same step faults in about 1,100 pages (4.5 MB) every step here, far more
  // with a real backbone; tuned, 0 once warm.
  INFO("minor page faults per warm step, sorted: " << fmt::format("{}", fmt::join(faults, ", ")));
  CHECK(median < 64);
#endif
}

TEST_CASE("MaskedWeightBackward masks a gradient in place only when no one else can see it",
          "[runtime][twin]") {
  const torch::Tensor mask = torch::tensor({true, false, true, true, false, true, false, true, true, true,
                                            false, false, true, true, true, false, true, true})
                                 .view({3, 6});
  ohem::detail::MaskFactor factor{mask, {}};
  const torch::Tensor g0 = torch::randn({3, 6});
  const torch::Tensor expected = torch::where(mask, g0, torch::zeros_like(g0));  // independent of the kernel
  const torch::Tensor weight = torch::zeros({3, 6}, torch::requires_grad());
  auto run = [&](torch::Tensor grad) {
    ohem::detail::MaskedWeightBackward node(factor);
    node.add_next_edge(torch::autograd::impl::gradient_edge(weight));
    torch::autograd::variable_list in;
    in.push_back(std::move(grad));
    torch::NoGradGuard no_grad;
    return node.apply(std::move(in))[0];
  };
  SECTION("the only reference: written in its own storage") {
    torch::Tensor g = g0.clone();
    const void* storage = g.data_ptr();
    const torch::Tensor out = run(std::move(g));
    CHECK(out.data_ptr() == storage);
    CHECK(torch::equal(out, expected));
  }
  SECTION("a tensor someone else holds is left alone") {
    const torch::Tensor g = g0.clone();
    const torch::Tensor out = run(g);
    CHECK(out.data_ptr() != g.data_ptr());
    CHECK(torch::equal(out, expected));
    CHECK(torch::equal(g, g0));
  }
  SECTION("a tensor whose storage another tensor (a view) shares is left alone") {
    torch::Tensor g = g0.clone();
    const torch::Tensor view = g.view({18});
    const torch::Tensor out = run(std::move(g));
    CHECK(out.data_ptr() != view.data_ptr());
    CHECK(torch::equal(out, expected));
    CHECK(torch::equal(view, g0.view({18})));
  }
  SECTION("memory wrapped with from_blob is left alone") {
    std::vector<float> user(g0.data_ptr<float>(), g0.data_ptr<float>() + 18);
    const torch::Tensor out = run(torch::from_blob(user.data(), {3, 6}));
    CHECK(out.data_ptr() != static_cast<void*>(user.data()));
    CHECK(torch::equal(out, expected));
    CHECK(torch::equal(torch::from_blob(user.data(), {3, 6}), g0));
  }
}
