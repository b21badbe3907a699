// quickstart: a small CNN trained for a few steps on generated "distorted images" with its pruned twin.
//
// Prints the per-layer mask sparsity and, every few steps, the loss parts: the task loss of the full
// model, the task loss of the twin, and the consistency between the two.
//
// Usage: quickstart [--steps N] [--batch B] [--ratio R] [--threads T] [--seed S]  (--help lists them)
#include <ohem/ohem.hpp>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <utility>

namespace {

struct Args {
  int64_t steps = 60;
  int64_t batch = 32;
  double ratio = ohem::MaskOptions().ratio();  // the library's default: the paper's recipe
  int threads = ohem::available_cores();       // the cores this process may use
  uint64_t seed = 0;
};

// A batch of generated 3x24x24 "photographs" (smooth random patterns) with one of three distortions at
// a random level 1..5; the quality label falls with the level. The mix is long-tailed on purpose:
// 70% noise, 22% blur, 8% contrast loss (the rare types are the "hard" samples).
std::pair<torch::Tensor, torch::Tensor> make_batch(int64_t n, torch::Generator& gen) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto freq = torch::rand({n, 3, 2}, gen, opts) * 0.5 + 0.1;
  auto coords = torch::arange(24, opts);
  auto img = (torch::sin(freq.select(2, 0).view({n, 3, 1, 1}) * coords.view({1, 1, 24, 1})) +
              torch::cos(freq.select(2, 1).view({n, 3, 1, 1}) * coords.view({1, 1, 1, 24}))) *
             0.5;
  auto level = torch::randint(1, 6, {n}, gen, torch::kLong);
  auto kind = torch::rand({n}, gen, opts);
  auto out = img.clone();
  for (int64_t i = 0; i < n; ++i) {
    const double l = level[i].item<double>() / 5.0;
    const double u = kind[i].item<double>();
    if (u < 0.70) {
      out[i] += torch::randn({3, 24, 24}, gen, opts) * (0.35 * l);
    } else if (u < 0.92) {
      auto k = torch::ones({3, 1, 5, 5}, opts) / 25.0;
      auto blurred = torch::conv2d(img[i].unsqueeze(0), k, {}, 1, 2, 1, 3).squeeze(0);
      out[i] = img[i] * (1 - l) + blurred * l;
    } else {
      out[i] = img[i] * (1.0 - 0.8 * l);
    }
  }
  auto mos = (1.0 - level.to(torch::kFloat) / 6.0).unsqueeze(1);
  return {out, mos};
}

torch::nn::Sequential make_model() {
  using namespace torch::nn;
  return Sequential(Conv2d(Conv2dOptions(3, 16, 3).padding(1)), BatchNorm2d(16), ReLU(),
                    Conv2d(Conv2dOptions(16, 32, 3).stride(2).padding(1)), BatchNorm2d(32), ReLU(),
                    Conv2d(Conv2dOptions(32, 32, 3).stride(2).padding(1)), BatchNorm2d(32), ReLU(),
                    AdaptiveAvgPool2d(1), Flatten(), Linear(32, 1));
}

}  // namespace

int main(int argc, char** argv) {
  // glibc's heap set up for training: memory freed in one step is reused by the next (docs/benchmarks.md).
  const ohem::HeapTuning heap = ohem::tune_heap_for_training();
  Args args;
  CLI::App app{"quickstart: a small CNN trained for a few steps on generated images with its pruned twin"};
  app.add_option("--steps", args.steps, "training steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", args.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  app.add_option("--ratio", args.ratio, "fraction of the convolution weights pruned in the twin, in [0, 1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--threads", args.threads,
                 "intra-op threads, 1 to 4096 (default: the cores this process may use)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", args.seed, "random seed of the model and the data")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    torch::set_num_threads(args.threads);
    torch::manual_seed(args.seed);
    torch::Generator data_gen = at::detail::createCPUGenerator(args.seed + 1);
    fmt::print("ohem {} quickstart | LibTorch {} | threads {} | steps {} | batch {} | ratio {}\n",
               ohem::version_string(), TORCH_VERSION, torch::get_num_threads(), args.steps, args.batch,
               args.ratio);
    fmt::print("{}\n", heap.description);

    auto net = make_model();
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3).weight_decay(5e-4));
    ohem::PrunedTwin<torch::nn::Sequential> twin(
        net, ohem::TwinOptions().masks(ohem::MaskOptions().ratio(args.ratio)));
    fmt::print("\nPruned twin: {} masked layers, global magnitude criterion (the paper's recipe)\n{}\n",
               twin.slots().size(), twin.masks().summary());

    auto [test_x, test_mos] = make_batch(256, data_gen);
    fmt::print("{:>5}  {:>10}  {:>10}  {:>11}  {:>10}  {:>8}\n", "step", "task(full)", "task(twin)",
               "consistency", "total", "time");
    const auto start = std::chrono::steady_clock::now();
    net->train();
    for (int64_t step = 1; step <= args.steps; ++step) {
      auto [x, mos] = make_batch(args.batch, data_gen);
      auto full = net->forward(x);
      auto pruned = twin.forward(x);
      auto task_full = torch::l1_loss(full, mos);
      auto task_twin = torch::l1_loss(pruned, mos);
      auto consistency = torch::mse_loss(full, pruned);
      auto total = task_full + task_twin + consistency;
      optimizer.zero_grad();
      total.backward();
      optimizer.step();
      twin.step();
      if (step == 1 || step % 10 == 0 || step == args.steps) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print("{:>5}  {:>10.4f}  {:>10.4f}  {:>11.6f}  {:>10.4f}  {:>7.1f}s\n", step,
                   task_full.item<double>(), task_twin.item<double>(), consistency.item<double>(),
                   total.item<double>(), secs);
      }
    }
    net->eval();
    torch::NoGradGuard no_grad;
    auto pred = net->forward(test_x);
    fmt::print("\nheld-out L1 on 256 generated images: full model {:.4f}, pruned twin {:.4f}\n",
               torch::l1_loss(pred, test_mos).item<double>(),
               torch::l1_loss(twin.forward(test_x), test_mos).item<double>());
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
