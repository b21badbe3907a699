// Single-process tests of ohem/distributed.hpp: the launcher environment and its errors, rendezvous
// failures (port in use, unreachable master), the sampler and the evaluation shards, and the
// single-process fallbacks. The multi-process tests are tests/distributed/ (CTest distributed_*).
#include "support.hpp"

#include <ohem/distributed.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using Vars = std::map<std::string, std::string>;

Vars full_env() {
  return {{"MASTER_ADDR", "10.0.0.1"},
          {"MASTER_PORT", "29501"},
          {"RANK", "3"},
          {"WORLD_SIZE", "4"},
          {"LOCAL_RANK", "1"}};
}

std::string error_of(const Vars& v) {
  try {
    ohem::DistributedEnv::from_map(v);
  } catch (const c10::Error& e) {
    return e.what();
  }
  return "";
}

// A port that a live c10d store listens on (the kernel picks it: port 0).
c10::intrusive_ptr<c10d::TCPStore> listening_store() {
  c10d::TCPStoreOptions o;
  o.port = 0;
  o.isServer = true;
  o.numWorkers = 1;
  o.waitWorkers = false;
  return ohem::detail::make_tcp_store("127.0.0.1", o);
}

}  // namespace

TEST_CASE("DistributedEnv reads the torchrun variables and names what is wrong", "[distributed]") {
  const auto env = ohem::DistributedEnv::from_map(full_env());
  CHECK(env.launched);
  CHECK(env.master_addr == "10.0.0.1");
  CHECK(env.port == 29501);
  CHECK(env.rank == 3);
  CHECK(env.world_size == 4);
  CHECK(env.local_rank == 1);

  Vars no_local = full_env();
  no_local.erase("LOCAL_RANK");
  CHECK(ohem::DistributedEnv::from_map(no_local).local_rank == 3);

  // None set: one process.
  const auto single = ohem::DistributedEnv::from_map({});
  CHECK_FALSE(single.launched);
  CHECK(single.world_size == 1);
  CHECK(single.rank == 0);

  Vars missing = full_env();
  missing.erase("WORLD_SIZE");
  missing.erase("MASTER_PORT");
  const std::string m = error_of(missing);
  CHECK(m.find("MASTER_PORT, WORLD_SIZE not set") != std::string::npos);

  Vars bad = full_env();
  bad["RANK"] = "two";
  CHECK(error_of(bad).find("RANK must be a non-negative integer, got \"two\"") != std::string::npos);
  bad = full_env();
  bad["RANK"] = "4";
  CHECK(error_of(bad).find("RANK must be in [0, WORLD_SIZE) = [0, 4), got RANK=4") != std::string::npos);
  bad = full_env();
  bad["MASTER_PORT"] = "70000";
  CHECK(error_of(bad).find("MASTER_PORT must be in [1, 65535], got 70000") != std::string::npos);
  bad = full_env();
  bad["WORLD_SIZE"] = "0";
  CHECK(error_of(bad).find("WORLD_SIZE must be >= 1, got 0") != std::string::npos);
  bad = full_env();
  bad["LOCAL_RANK"] = "5";
  CHECK(error_of(bad).find("LOCAL_RANK (5) cannot exceed RANK (3)") != std::string::npos);
  CHECK(error_of({{"LOCAL_RANK", "0"}}).find("LOCAL_RANK=0 is set but none of") != std::string::npos);
  bad = full_env();
  bad["MASTER_ADDR"] = "";
  CHECK(error_of(bad).find("MASTER_ADDR is empty") != std::string::npos);
}

namespace {
struct StoreOptionsWithLibuv {
  bool useLibUV = true;
};
struct StoreOptionsWithoutLibuv {
  int port = 0;
};
}  // namespace

namespace {
void count_sigpipe(int) {}
}  // namespace

TEST_CASE("SIGPIPE is ignored where it has the default action, a program's own handler is kept",
          "[distributed]") {
  struct sigaction saved {};
  REQUIRE(::sigaction(SIGPIPE, nullptr, &saved) == 0);
  struct sigaction set {};
  sigemptyset(&set.sa_mask);
  set.sa_handler = SIG_DFL;
  REQUIRE(::sigaction(SIGPIPE, &set, nullptr) == 0);
  CHECK(ohem::detail::ignore_sigpipe());
  struct sigaction now {};
  REQUIRE(::sigaction(SIGPIPE, nullptr, &now) == 0);
  CHECK(now.sa_handler == SIG_IGN);
  CHECK_FALSE(ohem::detail::ignore_sigpipe());  // already ignored
  set.sa_handler = count_sigpipe;
  REQUIRE(::sigaction(SIGPIPE, &set, nullptr) == 0);
  CHECK_FALSE(ohem::detail::ignore_sigpipe());
  REQUIRE(::sigaction(SIGPIPE, nullptr, &now) == 0);
  CHECK(now.sa_handler == count_sigpipe);
  REQUIRE(::sigaction(SIGPIPE, &saved, nullptr) == 0);
}

TEST_CASE("The libuv store is turned off only where the store options have it and it is on",
          "[distributed]") {
  // LibTorch 2.4+ defaults TCPStoreOptions::useLibUV to true and throws where it was built without
  // libuv (Debian 13's 2.6); detail::make_tcp_store then retries with it off. 1.x has no such member.
  StoreOptionsWithLibuv on;
  CHECK(ohem::detail::disable_libuv(on));
  CHECK_FALSE(on.useLibUV);
  CHECK_FALSE(ohem::detail::disable_libuv(on));  // already off: no second retry
  StoreOptionsWithoutLibuv none;
  CHECK_FALSE(ohem::detail::disable_libuv(none));
#if TORCH_VERSION_MAJOR < 2
  CHECK_FALSE(ohem::detail::has_use_libuv<c10d::TCPStoreOptions>::value);
#elif TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4
  CHECK(ohem::detail::has_use_libuv<c10d::TCPStoreOptions>::value);
#endif
}

TEST_CASE("DistributedContext: a port in use and an unreachable master give clear errors", "[distributed]") {
  auto busy = listening_store();
  const int port = busy->getPort();
  REQUIRE(port > 0);
  const auto options = ohem::DistributedOptions().timeout(std::chrono::milliseconds(1500));

  // Rank 0 would serve the store on a port that is taken.
  auto env0 = ohem::DistributedEnv::from_map({{"MASTER_ADDR", "127.0.0.1"},
                                              {"MASTER_PORT", std::to_string(port)},
                                              {"RANK", "0"},
                                              {"WORLD_SIZE", "1"}});
  std::string in_use;
  try {
    ohem::DistributedContext dist(env0, options);
  } catch (const c10::Error& e) {
    in_use = e.what();
  }
  INFO(in_use);
  CHECK(in_use.find("cannot start the rendezvous store on MASTER_PORT=" + std::to_string(port)) !=
        std::string::npos);
  CHECK(in_use.find("in use") != std::string::npos);

  // Rank 1 looks for a master where nothing listens any more: it gives up after the timeout.
  busy.reset();
  auto env1 = ohem::DistributedEnv::from_map({{"MASTER_ADDR", "127.0.0.1"},
                                              {"MASTER_PORT", std::to_string(port)},
                                              {"RANK", "1"},
                                              {"WORLD_SIZE", "2"}});
  std::string unreachable;
  const auto start = std::chrono::steady_clock::now();
  try {
    ohem::DistributedContext dist(env1, options);
  } catch (const c10::Error& e) {
    unreachable = e.what();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(unreachable);
  CHECK(unreachable.find("rank 1 of 2 could not rendezvous at MASTER_ADDR:MASTER_PORT=127.0.0.1:" +
                         std::to_string(port)) != std::string::npos);
  CHECK(s < 30.0);
}

TEST_CASE("DistributedContext: a launched group of one process joins, its collectives are the identity",
          "[distributed]") {
  auto probe = listening_store();
  const int port = probe->getPort();
  probe.reset();
  auto env = ohem::DistributedEnv::from_map({{"MASTER_ADDR", "127.0.0.1"},
                                             {"MASTER_PORT", std::to_string(port)},
                                             {"RANK", "0"},
                                             {"WORLD_SIZE", "1"}});
  ohem::DistributedContext dist(env, ohem::DistributedOptions().timeout(std::chrono::seconds(20)));
  CHECK(dist.backend_name() == "gloo");
  CHECK(dist.is_main());
  CHECK_FALSE(dist.distributed());
  const torch::Tensor t = torch::arange(6, torch::kDouble).reshape({3, 2});
  CHECK(torch::equal(dist.all_gather_cat(t), t));
  CHECK(torch::equal(dist.all_reduce(t), t));
}

TEST_CASE("A single process without launcher variables: every collective is the identity", "[distributed]") {
  ohem::DistributedContext dist;
  CHECK(dist.rank() == 0);
  CHECK(dist.world_size() == 1);
  CHECK(dist.backend_name() == "none");
  dist.barrier();
  torch::Tensor t = torch::randn({4, 3});
  torch::Tensor before = t.clone();
  dist.broadcast({t});
  CHECK(torch::equal(t, before));
  CHECK(torch::equal(dist.all_gather_cat(t), before));
  int calls = 0;
  dist.run_on_main([&] { ++calls; });
  CHECK(calls == 1);
  CHECK_THROWS_WITH(dist.run_on_main([] { throw std::runtime_error("disk full"); }), "disk full");

  // The data-parallel wrapper is a no-op: gradients stay as backward left them.
  auto net = torch::nn::Linear(3, 1);
  ohem::DistributedDataParallel ddp(dist, net);
  net->forward(t).sum().backward();
  const torch::Tensor g = net->weight.grad().clone();
  ddp.sync_gradients();
  CHECK(torch::equal(net->weight.grad(), g));
  CHECK(ddp.num_buckets() == 0);

  ohem::HardnessTracker tracker(4);
  ohem::gather_hardness(dist, tracker, torch::tensor({2, -1, 0}), torch::tensor({0.5, 9.0, 0.25}));
  CHECK(tracker.count(2) == 1);
  CHECK(tracker.count(0) == 1);
  CHECK(tracker.ranking().size() == 2);
}

TEST_CASE("gradient buckets: filled backwards up to the cap, a small last bucket, one dtype each",
          "[distributed]") {
  using ohem::detail::plan_buckets;
  using Plan = std::vector<std::vector<size_t>>;
  auto floats = [](std::vector<int64_t> n) {
    std::vector<torch::Tensor> out;
    for (int64_t k : n) out.push_back(torch::empty({k}));
    return out;
  };
  // 4-byte floats: caps of 1000 bytes (250 floats) and 100 bytes (25 floats).
  const auto p = floats({10, 10, 10, 100, 100, 100});
  CHECK(plan_buckets(p, 1000, 100) == Plan{{5, 4}, {3, 2}, {1, 0}});
  CHECK(plan_buckets(p, 1000, 0) == Plan{{5, 4}, {3, 2, 1, 0}});
  // The last bucket holds at least the first parameter; a parameter above the cap is alone.
  CHECK(plan_buckets(floats({30, 10, 300, 10}), 1000, 100) == Plan{{3}, {2}, {1}, {0}});
  CHECK(plan_buckets(floats({5}), 1000, 100) == Plan{{0}});
  CHECK(plan_buckets({}, 1000, 100).empty());
  // dtypes never mix, in the last bucket either.
  std::vector<torch::Tensor> mixed = floats({10, 10, 10, 10});
  mixed[1] = torch::empty({10}, torch::kDouble);
  mixed[3] = torch::empty({10}, torch::kDouble);
  CHECK(plan_buckets(mixed, 1000, 1000) == Plan{{3}, {2}, {1}, {0}});

  // ResNet-18 + Linear(512, 1) in registration order (conv1, bn1, layer1..4 with their BatchNorms and
  // downsampling, head); the expected sizes come from the same rule computed independently.
  std::vector<int64_t> sizes{64 * 3 * 49, 64, 64};
  int64_t in = 64;
  for (int64_t c : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      const int64_t from = block == 0 ? in : c;
      for (int64_t n : {c * from * 9, c, c, c * c * 9, c, c}) sizes.push_back(n);
      if (block == 0 && from != c) {
        for (int64_t n : {c * from, c, c}) sizes.push_back(n);
      }
    }
    in = c;
  }
  sizes.push_back(512);
  sizes.push_back(1);
  const auto resnet = floats(sizes);
  REQUIRE(resnet.size() == 62);
  auto bytes = [&](const Plan& plan) {
    std::vector<int64_t> out;
    for (const auto& b : plan) {
      int64_t sum = 0;
      for (size_t i : b) sum += resnet[i].numel() * 4;
      out.push_back(sum);
    }
    return out;
  };
  const int64_t mb = ohem::detail::megabytes(1.0);
  const Plan defaults = plan_buckets(resnet, 25 * mb, mb);
  CHECK(bytes(defaults) == std::vector<int64_t>{19417092, 24365056, 925952});
  CHECK(defaults.back().size() == 18);  // conv1, bn1, layer1, layer2.0.conv1 and its BatchNorm
  CHECK(defaults.back().back() == 0);
  CHECK(bytes(plan_buckets(resnet, 25 * mb, 0)) == std::vector<int64_t>{19417092, 25291008});
}

TEST_CASE("DistributedSampler: disjoint equal shards, padding at the tail, reshuffled per epoch",
          "[distributed]") {
  for (int64_t n : {0, 1, 7, 10, 13}) {
    for (int world : {1, 2, 3, 4}) {
      for (bool drop_last : {false, true}) {
        INFO("n=" << n << " world=" << world << " drop_last=" << drop_last);
        const auto opts = ohem::DistributedSamplerOptions().seed(11).drop_last(drop_last);
        std::multiset<int64_t> counted;
        std::vector<std::vector<int64_t>> epoch0(world), epoch1(world);
        for (int r = 0; r < world; ++r) {
          ohem::DistributedSampler s(n, r, world, opts);
          epoch0[r] = s.indices(0);
          epoch1[r] = s.indices(1);
          const int64_t expected = drop_last ? n / world : (n + world - 1) / world;
          CHECK(static_cast<int64_t>(epoch0[r].size()) == expected);
          CHECK(s.per_rank() == expected);
          for (int64_t j = 0; j < s.counted(); ++j) counted.insert(epoch0[r][static_cast<size_t>(j)]);
        }
        // The counted entries are every index once (drop_last: every kept index once).
        const int64_t covered = drop_last ? (n / world) * world : n;
        CHECK(static_cast<int64_t>(counted.size()) == covered);
        CHECK(std::set<int64_t>(counted.begin(), counted.end()).size() == counted.size());
        for (int64_t i : counted) CHECK((i >= 0 && i < n));
        if (n >= 7 && world <= 2) CHECK(epoch0 != epoch1);
      }
    }
  }
  // Without shuffling: rank r takes r, r + world, ... (torch's scheme), padded from the start.
  ohem::DistributedSampler plain(5, 1, 2, ohem::DistributedSamplerOptions().shuffle(false));
  CHECK(plain.indices(3) == std::vector<int64_t>{1, 3, 0});
  CHECK(plain.counted() == 2);
  CHECK_THROWS_WITH(ohem::DistributedSampler(5, 2, 2), Catch::Contains("rank 2 outside [0, 2)"));
}

TEST_CASE("shard_range splits n items into contiguous balanced ranges in rank order", "[distributed]") {
  for (int64_t n : {0, 1, 5, 37}) {
    for (int world : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        auto [b, e] = ohem::shard_range(n, r, world);
        CHECK(b == next);
        CHECK((e - b == n / world || e - b == n / world + 1));
        next = e;
      }
      CHECK(next == n);
    }
  }
  CHECK_THROWS_WITH(ohem::shard_range(-1, 0, 1), Catch::Contains("n must be >= 0, got -1"));
}
