// Tests of the toolkit's two trainers, run in-process (examples/toolkit/pairwise_trainer.hpp,
// mos_trainer.hpp): steps with and without OHEM, the study's options, bad options and data, resume,
// the output directory. The toolkit's other parts are tested in test_toolkit.cpp.
#include "support_toolkit.hpp"

#include <toolkit/backbones.hpp>
#include <toolkit/checkpoint.hpp>
#include <toolkit/command_line.hpp>
#include <toolkit/datasets.hpp>
#include <toolkit/image.hpp>
#include <toolkit/io.hpp>
#include <toolkit/mos_trainer.hpp>
#include <toolkit/output_dir.hpp>
#include <toolkit/pairwise_trainer.hpp>
#include <toolkit/transforms.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ohem_examples;
using Catch::Matchers::Contains;
using ohem_test::pattern;
using ohem_test::read_file;
using ohem_test::temp_dir;
using ohem_test::to_script;
using ohem_test::write_file;
using ohem_test::write_images;

// ---------------------------------------------------------------------------------------------------------------
// Trainers

namespace {

// The tiny trainer run's data (`trainer_csv`), written once per process.
std::string trainer_fixture() {
  static const std::string csv = ohem_test::trainer_csv(temp_dir("trainer_data"));
  return csv;
}

// A tiny trainer run (`tiny_options`) on the shared data into a fresh directory, OHEM on or off.
TrainOptions smoke_options(bool ohem_on) {
  const std::string csv = trainer_fixture();
  TrainOptions o = ohem_test::tiny_options(csv, temp_dir("run"));
  o.ohem = ohem_on;
  return o;
}

std::map<std::string, torch::Tensor> snapshot(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

template <typename Trainer>
void smoke(bool ohem_on, ohem::SelfCompetitorMode mode = ohem::SelfCompetitorMode::Joint) {
  TrainOptions o = smoke_options(ohem_on);
  o.mode = mode;
  Trainer t(o);
  CHECK(t.split().train.size() == 12);
  const auto before = snapshot(*t.net());
  ohem::MaskSet masks_before;
  if (ohem_on) {
    REQUIRE(t.competitor() != nullptr);
    masks_before = t.competitor()->twin().masks();
    CHECK(masks_before.sparsity() == Approx(0.65).margin(0.01));
    // A fresh run computes the first stage's masks once (issue 10).
    CHECK(t.competitor()->twin().mask_computations() == 1);
  } else {
    CHECK(t.competitor() == nullptr);
  }
  for (int k = 0; k < 2; ++k) {
    const StepStats s = t.step();
    CHECK(std::isfinite(s.loss));
    CHECK(std::isfinite(s.task_full));
    CHECK(std::isfinite(s.task_twin) == ohem_on);
    if (ohem_on) CHECK(s.loss == Approx(s.task_full + s.task_twin + s.consistency).epsilon(1e-5));
  }
  const auto after = snapshot(*t.net());
  for (const char* name : {"backbone.conv1.weight", "backbone.layer4.1.conv2.weight"}) {
    CHECK_FALSE(torch::equal(before.at(name), after.at(name)));
  }
  if (ohem_on) {
    // The "once" schedule: masks are computed at the stage start and held fixed.
    const ohem::MaskSet& m = t.competitor()->twin().masks();
    REQUIRE(m.size() == masks_before.size());
    for (size_t i = 0; i < m.size(); ++i) CHECK(torch::equal(m.mask(i), masks_before.mask(i)));
    CHECK(t.competitor()->twin().mask_computations() == 1);
  }
  CHECK(t.tracker().ranking().size() > 0);
}

template <typename Trainer>
void resume_identical(bool ohem_on) {
  TrainOptions o = smoke_options(ohem_on);
  double expected = 0.0;
  std::string ckpt;
  ohem::MaskSet saved_masks;
  {
    Trainer a(o);
    a.step();
    ckpt = a.checkpoint_path();
    a.save_checkpoint(ckpt);
    if (ohem_on) saved_masks = a.competitor()->twin().masks();
    expected = a.step().loss;
  }
  TrainOptions r = o;
  r.resume = ckpt;
  r.seed = 999;  // the checkpoint, not the seed, decides the state (the data order stays the run's own)
  r.seed = o.seed;
  Trainer b(r);
  CHECK(b.global_step() == 1);
  if (ohem_on) {
    // The masks come from the checkpoint (in MaskSet's own format), not computed again.
    CHECK(b.competitor()->twin().mask_computations() == 0);
    const ohem::MaskSet& m = b.competitor()->twin().masks();
    REQUIRE(m.size() == saved_masks.size());
    for (size_t i = 0; i < m.size(); ++i) {
      CHECK(m.name(i) == saved_masks.name(i));
      CHECK(torch::equal(m.mask(i), saved_masks.mask(i)));
      CHECK(m.threshold(i) == saved_masks.threshold(i));
    }
  }
  const StepStats s = b.step();
  CHECK(s.loss == expected);  // bit-identical on the CPU
  CHECK(s.step == 1);
}

}  // namespace

TEST_CASE("train_pairwise: two steps with and without OHEM", "[examples][trainer]") {
  smoke<train_pairwise::Trainer>(true);
  smoke<train_pairwise::Trainer>(false);
}

TEST_CASE("train_pairwise and train_mos: --arch cnniqa trains, the twin prunes its convolution",
          "[examples][trainer]") {
  TrainOptions o = smoke_options(true);
  o.arch = "cnniqa";
  o.width = 8;  // kernels
  train_pairwise::Trainer t(o);
  const auto before = snapshot(*t.net());
  for (const char* name :
       {"backbone.conv.weight", "backbone.fc1.weight", "backbone.fc2.weight", "fc.weight"}) {
    CHECK(before.count(name) == 1);
  }
  REQUIRE(t.competitor() != nullptr);
  CHECK(t.competitor()->twin().masks().size() == 1);  // the recipe masks convolutions only: CNNIQA has one
  CHECK(t.competitor()->twin().masks().sparsity() == Approx(0.65).margin(0.01));
  for (int k = 0; k < 2; ++k) CHECK(std::isfinite(t.step().loss));
  const auto after = snapshot(*t.net());
  CHECK_FALSE(torch::equal(before.at("backbone.conv.weight"), after.at("backbone.conv.weight")));
  CHECK_FALSE(torch::equal(before.at("backbone.fc2.weight"), after.at("backbone.fc2.weight")));
  // train_mos takes CNNIQA's features as its one scale.
  TrainOptions m = o;
  m.out = temp_dir("run");
  train_mos::Trainer mos(m);
  CHECK(mos.net()->fc1->weight.size(1) == CNNIQAOptions().hidden());
  CHECK(std::isfinite(mos.step().loss));
  // ImageNet weights exist for the ResNets only.
  o.pretrained = "resnet18.pt";
  o.out = temp_dir("run");
  CHECK_THROWS_WITH(train_pairwise::Trainer(o), Contains("--arch cnniqa has none"));
}

TEST_CASE("train_pairwise: sequential mode gives the joint mode's first loss", "[examples][trainer]") {
  TrainOptions o = smoke_options(true);
  train_pairwise::Trainer joint(o);
  o.mode = ohem::SelfCompetitorMode::Sequential;
  o.out = temp_dir("run_seq");
  train_pairwise::Trainer seq(o);
  CHECK(joint.step().loss == Approx(seq.step().loss).epsilon(1e-6));
  CHECK(ohem_test::close(joint.net()->fc->weight, seq.net()->fc->weight, 1e-4, 1e-6));
}

TEST_CASE("train_pairwise: checkpoint then resume gives the identical next-step loss",
          "[examples][trainer]") {
  resume_identical<train_pairwise::Trainer>(true);
  resume_identical<train_pairwise::Trainer>(false);
}

TEST_CASE("train_pairwise: stage 1 trains the head only, results and hardness files are written",
          "[examples][trainer]") {
  TrainOptions o = smoke_options(true);
  o.epochs1 = 1;
  o.epochs2 = 1;
  o.label = "thurstone";
  o.max_steps = 4;
  train_pairwise::Trainer t(o);
  const auto before = snapshot(*t.net());
  t.step();
  const auto after = snapshot(*t.net());
  CHECK(torch::equal(before.at("backbone.conv1.weight"), after.at("backbone.conv1.weight")));
  CHECK_FALSE(torch::equal(before.at("fc.weight"), after.at("fc.weight")));
  CHECK(t.competitor()->twin().mask_computations() == 1);
  const EvalResult r = t.train();  // 2 more steps end stage 1 (masks refreshed), 1 step of stage 2
  CHECK(t.global_step() == 4);
  CHECK(t.competitor()->twin().mask_computations() == 2);  // once per stage
  CHECK(r.predictions.size() == 4);
  // The test content (4 images) has one distortion type (the fixture alternates types by index parity).
  REQUIRE(r.by_type.size() == 1);
  CHECK(r.by_type.begin()->second.n == 4);
  CHECK(std::isfinite(r.overall.plcc));
  for (const char* f : {"results.json", "hardest.csv", "log.jsonl", "checkpoint.pt"})
    CHECK(fs::exists(fs::path(o.out) / f));
  std::ifstream in(fs::path(o.out) / "results.json");
  const auto json = nlohmann::json::parse(in);
  CHECK((std::isfinite(r.overall.srcc) ? json.at("srcc") == r.overall.srcc : json.at("srcc").is_null()));
  CHECK(json.at("ohem") == true);
  CHECK(json.at("steps") == 4);
  CHECK(json.at("config").at("--label") == "thurstone");
}

namespace {
// Captures what std::cout receives while it lives.
struct CoutCapture {
  std::ostringstream text;
  std::streambuf* old = std::cout.rdbuf(text.rdbuf());
  ~CoutCapture() { std::cout.rdbuf(old); }
};

// The events of a run's log.jsonl named `event`.
std::vector<nlohmann::json> log_events(const std::string& out, const std::string& event) {
  std::ifstream in(fs::path(out) / "log.jsonl");
  std::vector<nlohmann::json> found;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("event") == event) found.push_back(j);
  }
  return found;
}

nlohmann::json read_results(const std::string& out) {
  std::ifstream in(fs::path(out) / "results.json");
  return nlohmann::json::parse(in);
}
}  // namespace

TEST_CASE(
    "study options: masks of untrained weights warn on stdout, in log.jsonl and results.json, not after "
    "--init-from",
    "[examples][trainer][study]") {
  TrainOptions o = smoke_options(true);
  o.epochs1 = 1;  // stage 1 freezes the backbone: stage 2's masks come from its initial weights
  o.epochs2 = 1;
  o.quiet = false;
  std::string checkpoint;
  std::map<std::string, torch::Tensor> trained;
  {
    CoutCapture out;
    train_pairwise::Trainer t(o);
    t.train();
    checkpoint = t.checkpoint_path();
    trained = snapshot(*t.net());
    // Both stages' masks were computed from weights as initialised (every conv layer untrained).
    const std::string text = out.text.str();
    CHECK_THAT(text, Contains("warning: magnitude masks of untrained weights are random masks: 20 of the 20 "
                              "layers the twin masks in stage 1"));
    CHECK_THAT(text, Contains("20 of the 20 layers the twin masks in stage 2"));
  }
  const auto warnings = log_events(o.out, "warning");
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].at("stage") == 1);
  CHECK(warnings[1].at("stage") == 2);
  const nlohmann::json results = read_results(o.out);
  REQUIRE(results.at("warnings").size() == 2);
  CHECK_THAT(results.at("warnings")[1].get<std::string>(),
             Contains("magnitude masks of untrained weights are random masks") && Contains("stage 2"));

  // From the trained checkpoint (--init-from): the same net, its weights, no warning in either stage.
  TrainOptions f = o;
  f.init_from = checkpoint;
  f.out = temp_dir("run_init_from");
  {
    CoutCapture out;
    train_pairwise::Trainer t(f);
    for (const auto& p : t.net()->named_parameters()) CHECK(torch::equal(p.value(), trained.at(p.key())));
    t.train();
    CHECK_THAT(out.text.str(), Contains("initialised") && Contains(checkpoint));
    CHECK_THAT(out.text.str(), !Contains("warning:"));
  }
  CHECK(log_events(f.out, "warning").empty());
  CHECK(read_results(f.out).at("warnings").empty());

  // A random mask is random by design: no warning.
  TrainOptions r = o;
  r.mask_criterion = ohem::MaskCriterion::Random;
  r.out = temp_dir("run_random");
  r.quiet = true;
  r.max_steps = 1;
  train_pairwise::Trainer(r).train();
  CHECK(log_events(r.out, "warning").empty());
}

TEST_CASE(
    "study options: --mask-layers conv+linear masks every Linear layer but the head, the summary "
    "counts all parameters",
    "[examples][trainer][study]") {
  TrainOptions o = smoke_options(true);
  o.arch = "cnniqa";  // a convolution and two Linear layers in the backbone, a Linear head
  o.width = 8;
  auto names = [](const ohem::MaskSet& m) {
    std::vector<std::string> out;
    for (size_t i = 0; i < m.size(); ++i) out.push_back(m.name(i));
    return out;
  };
  {
    train_pairwise::Trainer t(o);  // the recipe: convolutions only
    CHECK(names(t.competitor()->twin().masks()) == std::vector<std::string>{"backbone.conv.weight"});
  }
  o.mask_layers = "conv+linear";
  o.quiet = false;
  o.out = temp_dir("run_linear");
  {
    CoutCapture out;
    train_pairwise::Trainer t(o);
    const ohem::MaskSet& m = t.competitor()->twin().masks();
    CHECK(names(m) ==
          std::vector<std::string>{"backbone.conv.weight", "backbone.fc1.weight", "backbone.fc2.weight"});
    int64_t all = 0, masked = 0;
    for (const auto& p : t.net()->named_parameters()) {
      all += p.value().numel();
      if (p.key() == "backbone.conv.weight" || p.key() == "backbone.fc1.weight" ||
          p.key() == "backbone.fc2.weight")
        masked += p.value().numel();
    }
    CHECK(m.numel() == masked);
    CHECK_THAT(out.text.str(),
               Contains(fmt::format("in 3 layers: {:.2f}% of all {} parameters masked, {:.2f}% pruned",
                                    100.0 * masked / all, all, 100.0 * (m.numel() - m.kept()) / all)));
    const auto events = log_events(o.out, "masks");
    REQUIRE(events.size() == 1);
    CHECK(events[0].at("parameters") == all);
    CHECK(events[0].at("layers") == 3);
  }
  // --mask-exclude leaves more layers dense; train_mos's head is its two Linear layers.
  o.mask_exclude = {"fc2"};
  o.out = temp_dir("run_exclude");
  o.quiet = true;
  {
    train_mos::Trainer t(o);
    CHECK(names(t.competitor()->twin().masks()) ==
          std::vector<std::string>{"backbone.conv.weight", "backbone.fc1.weight"});
  }
  // The options are part of the run: a resume with other values is refused, naming them.
  TrainOptions recipe = smoke_options(true), linear = recipe;
  linear.mask_layers = "conv+linear";
  linear.mask_exclude = {"fc2"};
  const auto diffs = resume_differences(nlohmann::json::parse(run_config(linear).dump()), recipe);
  REQUIRE(diffs.size() == 2);
  CHECK_THAT(diffs[0], Contains("--mask-layers: checkpoint \"conv+linear\", command line \"conv\""));
  CHECK_THAT(diffs[1], Contains("--mask-exclude"));
}

TEST_CASE(
    "study options: --init-from a TorchScript file of the same net, mismatches and other files are "
    "errors naming the file",
    "[examples][trainer][study]") {
  TrainOptions o = smoke_options(true);
  torch::manual_seed(5);
  train_pairwise::BaseCNN source(o.arch, o.width);
  const std::string path = ohem_test::temp_path("whole_net.pt");
  to_script(*source, "BaseCNN").save(path);
  o.init_from = path;
  {
    train_pairwise::Trainer t(o);
    for (const auto& p : source->named_parameters())
      CHECK(torch::equal(p.value(), t.net()->named_parameters()[p.key()]));
    for (const auto& b : source->named_buffers())
      CHECK(torch::equal(b.value(), t.net()->named_buffers()[b.key()]));
  }
  // A file of another net: every difference named.
  torch::jit::Module other = to_script(*source, "BaseCNN");
  other.register_parameter("extra", torch::zeros({2}), false);
  const std::string other_path = ohem_test::temp_path("other_net.pt");
  other.save(other_path);
  o.init_from = other_path;
  o.out = temp_dir("run_other");
  CHECK_THROWS_WITH(train_pairwise::Trainer(o),
                    Contains(other_path) && Contains("extra: in the file, not in the model"));
  o.width = 16;
  o.init_from = path;
  o.out = temp_dir("run_wide");
  CHECK_THROWS_WITH(train_pairwise::Trainer(o), Contains(path) && Contains("backbone.conv1.weight: file"));
  // Neither a checkpoint nor TorchScript; missing; both --pretrained and --init-from.
  const std::string text = ohem_test::temp_path("not_a_model.txt");
  write_file(text, "hello");
  o.width = 8;
  o.init_from = text;
  o.out = temp_dir("run_text");
  CHECK_THROWS_WITH(train_pairwise::Trainer(o),
                    Contains("is neither a trainer checkpoint") && Contains("nor a TorchScript file"));
  o.init_from = text + ".missing";
  CHECK_THROWS_WITH(train_pairwise::Trainer(o), Contains("--init-from: no file"));
  o.init_from = path;
  o.pretrained = path;
  CHECK_THROWS_WITH(train_pairwise::Trainer(o), Contains("--pretrained") && Contains("--init-from"));
}

TEST_CASE("study options: --twin-crops independent shows the twin its own crops of the same images",
          "[examples][trainer][study]") {
  TrainOptions o = smoke_options(true);
  o.ratio = 0;  // the twin keeps every weight: it differs from the full model only in what it sees
  {
    train_pairwise::Trainer t(o);
    const StepStats s = t.step();
    CHECK(s.consistency == 0.0);
    CHECK(s.task_twin == s.task_full);
  }
  o.twin_crops = "independent";
  o.out = temp_dir("run_crops");
  double joint = 0.0;
  {
    train_pairwise::Trainer t(o);
    const StepStats s = t.step();
    CHECK(s.consistency > 0.0);
    CHECK(s.task_twin != s.task_full);
    joint = s.loss;
  }
  o.mode = ohem::SelfCompetitorMode::Sequential;  // the same crops replayed: the same loss
  o.out = temp_dir("run_crops_seq");
  CHECK(train_pairwise::Trainer(o).step().loss == Approx(joint).epsilon(1e-6));
  o.mode = ohem::SelfCompetitorMode::Joint;
  o.out = temp_dir("run_crops_mos");
  CHECK(train_mos::Trainer(o).step().consistency > 0.0);
  o.twin_crops = "same";
  o.out = temp_dir("run_same_mos");
  CHECK(train_mos::Trainer(o).step().consistency == 0.0);
}

TEST_CASE("train_mos: two steps with and without OHEM, resume is exact", "[examples][trainer]") {
  smoke<train_mos::Trainer>(true);
  smoke<train_mos::Trainer>(false);
  resume_identical<train_mos::Trainer>(true);
}

TEST_CASE("trainers: bad options and bad data are errors naming the cause", "[examples][trainer]") {
  // CLI11's messages, naming the option.
  CHECK_THROWS_WITH(parse_train_args({"--ratio"}), Contains("--ratio: 1 required FLOAT missing"));
  CHECK_THROWS_WITH(parse_train_args({"--ratio", "x"}), Contains("Could not convert: --ratio = x"));
  CHECK_THROWS_WITH(parse_train_args({"--width", "1.5"}), Contains("Could not convert: --width = 1.5"));
  CHECK_THROWS_WITH(parse_train_args({"--ohem", "maybe"}), Contains("Could not convert: --ohem = maybe"));
  CHECK_THROWS_WITH(parse_train_args({"--mode", "both"}), Contains("--mode: both not in {joint,sequential}"));
  CHECK_THROWS_WITH(parse_train_args({"--batchnorm", "x"}),
                    Contains("--batchnorm: x not in {frozen,separate,shared}"));
  CHECK_THROWS_WITH(parse_train_args({"--split", "bogus"}),
                    Contains("--split: bogus not in {image,group,auto,kadid-longtail,kadid-balanced}"));
  CHECK_THROWS_WITH(parse_train_args({"--frobnicate", "1"}),
                    Contains("not expected") && Contains("--frobnicate"));
  CHECK_THROWS_WITH(parse_train_args({"stray"}), Contains("not expected: stray"));
  CHECK_THROWS_WITH(parse_train_args({"--seed", "-1"}), Contains("--seed") && Contains("non-negative"));
  CHECK_THROWS_AS(parse_train_args({"--help"}), CLI::CallForHelp);
  CHECK(parse_train_args({"--mode", "Sequential"}).mode == ohem::SelfCompetitorMode::Sequential);
  CHECK(parse_train_args({"--quiet", "--overwrite"}).overwrite);
  TrainOptions o = parse_train_args(
      {"--ohem", "off", "--ratio", "0.7", "--mode", "sequential", "--batchnorm", "separate"});
  CHECK(!o.ohem);
  CHECK(o.ratio == 0.7);
  CHECK(o.mode == ohem::SelfCompetitorMode::Sequential);
  CHECK(o.batchnorm == ohem::BatchNormPolicy::Separate);

  TrainOptions bad = smoke_options(true);
  bad.ratio = 1.0;
  CHECK_THROWS_WITH(train_pairwise::Trainer(bad), Contains("--ratio must be in [0, 1)"));
  bad = smoke_options(true);
  bad.crop = 64;
  bad.resize = 32;
  CHECK_THROWS_WITH(train_pairwise::Trainer(bad), Contains("--crop (64) must not exceed --resize (32)"));
  bad = smoke_options(true);
  bad.csv = "";
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Contains("--csv"));
  bad = smoke_options(true);
  bad.format = "tid2013";
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Contains("unknown dataset format"));

  // Resuming with the other OHEM setting is refused.
  TrainOptions a = smoke_options(false);
  std::string ckpt;
  {
    train_mos::Trainer t(a);
    t.step();
    ckpt = t.checkpoint_path();
    t.save_checkpoint(ckpt);
  }
  TrainOptions r = smoke_options(true);
  r.resume = ckpt;
  CHECK_THROWS_WITH(train_mos::Trainer(r), Contains("--ohem: checkpoint false, command line true"));
  r.resume = ckpt + ".missing";
  CHECK_THROWS_WITH(train_mos::Trainer(r), Contains("does not exist"));

  // A corrupt image surfaces when loaded, naming the CSV line and the file.
  const std::string dir = temp_dir("corrupt_data");
  write_images(dir, 8);
  write_file((fs::path(dir) / "images" / "img5.png").string(), "garbage");
  std::string rows;
  for (int i = 0; i < 8; ++i) rows += "images/img" + std::to_string(i) + ".png," + std::to_string(i) + "\n";
  write_file((fs::path(dir) / "c.csv").string(), rows);
  TrainOptions c = smoke_options(false);
  c.csv = (fs::path(dir) / "c.csv").string();
  c.crop = 12;
  c.batch2 = 6;
  c.train_fraction = 0.9;
  train_mos::Trainer t(c);
  CHECK_THROWS_WITH(t.step(), Contains("c.csv:6") && Contains("img5.png") && Contains("cannot decode"));
}

// ---------------------------------------------------------------------------------------------------------------
// Resume is the run it claims to be; one writer per output directory (issue 11 §1–2)

namespace {

// Trains `steps` steps of a fresh pairwise run in o.out, checkpoints, and returns the checkpoint path.
std::string checkpointed_run(const TrainOptions& o, int steps = 1) {
  train_pairwise::Trainer t(o);
  for (int k = 0; k < steps; ++k) t.step();
  t.save_checkpoint(t.checkpoint_path());
  return t.checkpoint_path();
}

// The global_step of every "step" line of a log, in order.
std::vector<int64_t> logged_steps(const std::string& log) {
  std::vector<int64_t> out;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);  // every line is whole JSON
    if (j.at("event") == "step") out.push_back(j.at("global_step").get<int64_t>());
  }
  return out;
}

}  // namespace

TEST_CASE("resume: each run-defining option that differs from the checkpoint is refused, named",
          "[examples][trainer][resume]") {
  const TrainOptions o = smoke_options(true);
  const std::string ckpt = checkpointed_run(o);
  // (what changes, the expected line). Values as the smoke options set them; strings are quoted.
  const std::vector<std::pair<std::function<void(TrainOptions&)>, std::string>> cases = {
      {[](TrainOptions& r) { r.width = 16; }, "--width: checkpoint 8, command line 16"},
      {[](TrainOptions& r) { r.arch = "resnet50"; },
       "--arch: checkpoint \"resnet18\", command line \"resnet50\""},
      {[](TrainOptions& r) { r.ratio = 0.3; }, "--ratio: checkpoint 0.65, command line 0.3"},
      {[](TrainOptions& r) { r.ohem = false; }, "--ohem: checkpoint true, command line false"},
      {[](TrainOptions& r) { r.batchnorm = ohem::BatchNormPolicy::Frozen; },
       "--batchnorm: checkpoint \"shared\", command line \"frozen\""},
      {[](TrainOptions& r) { r.mode = ohem::SelfCompetitorMode::Sequential; },
       "--mode: checkpoint \"joint\", command line \"sequential\""},
      {[](TrainOptions& r) { r.alpha = 0.5; }, "--alpha: checkpoint 1.0, command line 0.5"},
      {[](TrainOptions& r) { r.lambda = 2; }, "--lambda: checkpoint 1.0, command line 2.0"},
      {[](TrainOptions& r) { r.split_seed = 3; }, "--split-seed: checkpoint 0, command line 3"},
      {[](TrainOptions& r) { r.split = "image"; }, "--split: checkpoint \"auto\", command line \"image\""},
      {[](TrainOptions& r) { r.train_fraction = 0.5; },
       "--train-fraction: checkpoint 0.75, command line 0.5"},
      {[](TrainOptions& r) { r.csv += ".other"; }, "--csv: checkpoint"},
      {[](TrainOptions& r) { r.images = "/elsewhere"; },
       "--images: checkpoint \"\", command line \"/elsewhere\""},
      {[](TrainOptions& r) { r.test_csv = "t.csv"; }, "--test-csv: checkpoint \"\", command line \"t.csv\""},
      {[](TrainOptions& r) { r.format = "koniq10k"; },
       "--format: checkpoint \"generic\", command line \"koniq10k\""},
      {[](TrainOptions& r) { r.skip_bad_rows = true; },
       "--skip-bad-rows: checkpoint false, command line true"},
      {[](TrainOptions& r) { r.label = "thurstone"; },
       "--label: checkpoint \"binary\", command line \"thurstone\""},
      {[](TrainOptions& r) { r.pretrained = "w.pt"; },
       "--pretrained: checkpoint \"\", command line \"w.pt\""},
      {[](TrainOptions& r) { r.crop = 12; }, "--crop: checkpoint 16, command line 12"},
      {[](TrainOptions& r) { r.resize = 20; }, "--resize: checkpoint 0, command line 20"},
      {[](TrainOptions& r) { r.test_resize = 20; }, "--test-resize: checkpoint 0, command line 20"},
      {[](TrainOptions& r) { r.test_crop = 8; }, "--test-crop: checkpoint 0, command line 8"},
      {[](TrainOptions& r) { r.flip = false; }, "--flip: checkpoint true, command line false"},
      {[](TrainOptions& r) { r.seed = 5; }, "--seed: checkpoint 0, command line 5"},
      {[](TrainOptions& r) { r.lr = 1e-4; }, "--lr: checkpoint 0.001, command line 0.0001"},
      {[](TrainOptions& r) { r.weight_decay = 0; }, "--weight-decay: checkpoint 0.0005, command line 0.0"},
      {[](TrainOptions& r) { r.lr_step = 1; }, "--lr-step: checkpoint 3, command line 1"},
      {[](TrainOptions& r) { r.gamma = 0.5; }, "--gamma: checkpoint 0.2, command line 0.5"},
      {[](TrainOptions& r) { r.batch2 = 2; }, "--batch2: checkpoint 4, command line 2"},
      {[](TrainOptions& r) { r.batch1 = 2; }, "--batch1: checkpoint 4, command line 2"},
      // The schedule: stage 2 (the last) may only grow; stage 1 may not appear or change.
      {[](TrainOptions& r) { r.epochs2 = 1; }, "--epochs2: checkpoint 2, command line 1"},
      {[](TrainOptions& r) { r.epochs1 = 1; }, "--epochs1: checkpoint 0, command line 1"},
  };
  for (const auto& [change, expected] : cases) {
    INFO(expected);
    TrainOptions r = o;
    r.resume = ckpt;
    change(r);
    CHECK_THROWS_WITH(train_pairwise::Trainer(r), Contains(ckpt) && Contains(expected));
  }
  // Several differences are listed together.
  TrainOptions r = o;
  r.resume = ckpt;
  r.width = 16;
  r.seed = 2;
  CHECK_THROWS_WITH(train_pairwise::Trainer(r), Contains("--width: checkpoint 8, command line 16") &&
                                                    Contains("--seed: checkpoint 0, command line 2"));
  // What may change: threads, progress, verbosity, evaluation and checkpoint cadence, the step limit.
  r = o;
  r.resume = ckpt;
  r.threads = 2;
  r.progress = true;
  r.quiet = false;
  r.eval_every_epoch = false;
  r.eval_batch = 3;
  r.checkpoint_every = 1;
  r.max_steps = 2;
  r.hardest = 5;
  train_pairwise::Trainer t(r);
  CHECK(t.global_step() == 1);
  t.step();
  CHECK(t.done());
  torch::set_num_threads(1);
}

TEST_CASE("resume: the last stage's epochs may grow, extending a finished run",
          "[examples][trainer][resume]") {
  TrainOptions o = smoke_options(false);
  o.epochs2 = 1;
  o.hardest = 0;
  {
    train_mos::Trainer t(o);
    t.train();  // 3 steps; the epoch end writes the checkpoint
    CHECK(t.global_step() == 3);
  }
  TrainOptions r = o;
  r.resume = (fs::path(o.out) / "checkpoint.pt").string();
  r.epochs2 = 2;
  train_mos::Trainer t(r);
  CHECK(t.global_step() == 3);
  CHECK(!t.done());
  CHECK(t.schedule().position().epoch == 1);
  t.train();
  CHECK(t.global_step() == 6);
}

TEST_CASE("resume: shapes are checked against the checkpoint before loading, never resized",
          "[examples][trainer][resume]") {
  torch::manual_seed(0);
  ResNet narrow(ResNetOptions("resnet18").width(8)), wide(ResNetOptions("resnet18").width(16));
  torch::serialize::OutputArchive out;
  narrow->save(out);
  const std::string path = ohem_test::temp_path("narrow.pt");
  out.save_to(path);
  torch::serialize::InputArchive in;
  in.load_from(path);
  const auto diff = shape_differences(*wide, in);
  REQUIRE(!diff.empty());
  CHECK_THAT(diff.front(), Contains("conv1.weight: checkpoint [8, 3, 7, 7], model [16, 3, 7, 7]"));
  CHECK(wide->conv1->weight.size(0) == 16);
  torch::serialize::InputArchive in2;
  in2.load_from(path);
  CHECK(shape_differences(*narrow, in2).empty());
}

TEST_CASE("resume: a checkpoint with corrupted bytes inside a weight is refused, naming the file",
          "[examples][trainer][resume]") {
  const TrainOptions o = smoke_options(true);
  std::string ckpt;
  torch::Tensor w;
  {
    train_pairwise::Trainer t(o);
    t.step();
    ckpt = t.checkpoint_path();
    t.save_checkpoint(ckpt);
    w = t.net()->named_parameters()["backbone.layer4.1.conv2.weight"].detach().contiguous().clone();
  }
  // Find the weight's bytes in the file and flip 64 of them.
  std::string bytes = read_file(ckpt);
  const std::string needle(static_cast<const char*>(w.data_ptr()), 64);
  const size_t at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  for (size_t i = at + 64; i < at + 128; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  {
    std::ofstream out(ckpt, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  TrainOptions r = o;
  r.resume = ckpt;
  CHECK_THROWS_WITH(train_pairwise::Trainer(r), Contains(ckpt) && Contains("corrupted"));
  // A file that is not a checkpoint at all.
  write_file(ckpt, "not a checkpoint");
  CHECK_THROWS_WITH(train_pairwise::Trainer(r), Contains(ckpt) && Contains("cannot read checkpoint"));
}

TEST_CASE("resume after a crash: stale temporaries are removed, the log is cut back to the checkpoint",
          "[examples][trainer][resume]") {
  const TrainOptions o = smoke_options(true);
  const std::string log = (fs::path(o.out) / "log.jsonl").string();
  std::string ckpt;
  {
    train_pairwise::Trainer t(o);
    t.step();
    ckpt = t.checkpoint_path();
    t.save_checkpoint(ckpt);
    t.step();  // written to the log after the checkpoint: lost with the crash
  }
  CHECK(logged_steps(log) == std::vector<int64_t>{1, 2});
  // What a kill -9 in the middle of writing leaves: half-written temporaries and half a log line.
  write_file((fs::path(o.out) / "checkpoint.pt.tmp.4242").string(), "half a checkpoint");
  write_file((fs::path(o.out) / "results.json.tmp.0123456789abcdef").string(), "{");
  {
    std::ofstream half(log, std::ios::app);
    half << "{\"event\":\"st";
  }
  TrainOptions r = o;
  r.resume = ckpt;
  train_pairwise::Trainer t(r);
  CHECK(!fs::exists(fs::path(o.out) / "checkpoint.pt.tmp.4242"));
  CHECK(!fs::exists(fs::path(o.out) / "results.json.tmp.0123456789abcdef"));
  CHECK(logged_steps(log) == std::vector<int64_t>{1});
  t.step();
  t.step();
  CHECK(logged_steps(log) == std::vector<int64_t>{1, 2, 3});  // one run, every line whole JSON
  for (const auto& e : fs::directory_iterator(o.out))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("output directory: one run at a time, a used directory needs --resume or --overwrite",
          "[examples][trainer][output]") {
  TrainOptions o = smoke_options(false);
  {
    train_mos::Trainer first(o);
    // A second run on the same directory fails at once, naming the directory and the holder.
    CHECK_THROWS_WITH(train_mos::Trainer(o), Contains(o.out) && Contains("in use by another run") &&
                                                 Contains("process " + std::to_string(::getpid())));
    TrainOptions other = o;
    other.overwrite = true;
    CHECK_THROWS_WITH(train_mos::Trainer(other), Contains("in use by another run"));
    first.step();
    first.save_checkpoint(first.checkpoint_path());
  }
  // The lock is released with the run.
  CHECK(!fs::exists(fs::path(o.out) / ".ohem.lock"));
  // A fresh run into a directory that holds a run refuses, before reading any data.
  TrainOptions fresh = o;
  fresh.csv = "/nonexistent/data.csv";
  CHECK_THROWS_WITH(train_mos::Trainer(fresh),
                    Contains("already holds a run") && Contains("checkpoint.pt") && Contains("--overwrite"));
  const std::string before = read_file((fs::path(o.out) / "log.jsonl").string());
  CHECK_THROWS(train_mos::Trainer(o));
  CHECK(read_file((fs::path(o.out) / "log.jsonl").string()) == before);  // nothing was touched
  // --overwrite replaces it.
  fresh = o;
  fresh.overwrite = true;
  {
    train_mos::Trainer t(fresh);
    CHECK(t.global_step() == 0);
    CHECK(!fs::exists(fs::path(o.out) / "checkpoint.pt"));
  }
  // A lock file left by a crashed run (its holder is gone: the kernel dropped its lock) is taken over.
  write_file((fs::path(o.out) / ".ohem.lock").string(), "999999\n");
  fresh.overwrite = true;
  CHECK_NOTHROW(train_mos::Trainer(fresh));
  // Output paths are checked before the data is read: a file given as the directory.
  TrainOptions bad = o;
  bad.out = (fs::path(o.out) / "log.jsonl").string();
  bad.csv = "/nonexistent/data.csv";
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Contains("exists and is not a directory"));
}

TEST_CASE("output directory: a lock held by another process is refused", "[examples][trainer][output]") {
  const std::string dir = temp_dir("locked");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    OutputLock lock(dir);
    char c = 'x';
    [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
    ::sleep(30);  // killed by the parent
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  CHECK_THROWS_WITH(OutputLock(dir), Contains("in use by another run") && Contains(std::to_string(child)));
  ::kill(child, SIGKILL);  // a crash: the lock file stays, its lock goes
  ::waitpid(child, nullptr, 0);
  CHECK(fs::exists(fs::path(dir) / ".ohem.lock"));
  CHECK_NOTHROW(OutputLock(dir));
  ::close(ready[0]);
  ::close(ready[1]);
}
