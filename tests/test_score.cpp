// Tests of ohem-score (examples/ohem_score), run in-process: its predictions against the trainers' own
// test predictions, the image lists, bad images, the TorchScript export (C++ and, where Debian's
// python3-torch is installed, Python), and its errors.
#include "support.hpp"

#include <ohem_score/ohem_score.hpp>
#include <toolkit/csv.hpp>
#include <toolkit/image.hpp>
#include <toolkit/models.hpp>
#include <toolkit/mos_trainer.hpp>
#include <toolkit/pairwise_trainer.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ohem_examples;

namespace {

// Training and test images of two sizes (so that the evaluation batches split by size), a generic CSV
// for each; returns {train.csv, test.csv}. The test names sit in a subfolder (names with a '/').
std::pair<std::string, std::string> score_fixture() {
  static std::pair<std::string, std::string> csvs;
  if (!csvs.first.empty()) return csvs;
  const fs::path dir = ohem_test::temp_path("score_data");
  fs::create_directories(dir / "images" / "test");
  std::string train = "path,mos\n", test = "path,mos,type\n";
  for (int i = 0; i < 20; ++i) {
    torch::manual_seed(300 + i);
    const int64_t h = i % 3 == 0 ? 24 : 20, w = i % 3 == 0 ? 30 : 20;
    const torch::Tensor img = (torch::rand({h, w, 3}) * 255).to(torch::kUInt8);
    const bool is_test = i >= 12;
    const std::string name = std::string(is_test ? "images/test/s" : "images/s") + std::to_string(i) + ".png";
    save_image((dir / name).string(), img);
    (is_test ? test : train) += name + "," + std::to_string(1.0 + (i * 7) % 20 * 0.2) +
                                (is_test ? std::string(i % 2 ? ",noise" : ",blur") : std::string()) + "\n";
  }
  csvs = {(dir / "train.csv").string(), (dir / "test.csv").string()};
  std::ofstream(csvs.first) << train;
  std::ofstream(csvs.second) << test;
  return csvs;
}

TrainOptions score_options(const std::string& arch) {
  const auto [train, test] = score_fixture();
  TrainOptions o;
  o.csv = train;
  o.test_csv = test;
  o.arch = arch;
  o.width = 4;
  o.resize = 0;
  o.crop = 16;
  o.test_resize = 0;  // the test images keep their two sizes
  o.epochs1 = 0;
  o.epochs2 = 1;
  o.batch1 = o.batch2 = 4;
  o.eval_batch = 3;
  o.lr = 1e-3;
  o.progress = false;
  o.quiet = true;
  o.threads = 1;
  o.out = ohem_test::temp_path("score_run");
  return o;
}

// Runs ohem-score; returns its exit status, with its output in `out` and `err`.
int score(const std::vector<std::string>& args, std::string& out, std::string& err) {
  std::ostringstream o, e;
  const int rc = ohem_score::run(args, o, e);
  out = o.str();
  err = e.str();
  return rc;
}

// The rows of a CSV file as name → the field `column` (as text).
std::map<std::string, std::string> column_by_name(const std::string& path, const std::string& column) {
  const CsvFile csv = read_csv(path, true);
  const int64_t n = csv.require_column({"name"}, "name"), c = csv.require_column({column}, column);
  std::map<std::string, std::string> out;
  for (const auto& row : csv.rows)
    out[row.second.at(static_cast<size_t>(n))] = row.second.at(static_cast<size_t>(c));
  return out;
}

template <typename Trainer>
void expect_trainer_predictions(const std::string& arch) {
  const TrainOptions o = score_options(arch);
  {
    Trainer t(o);
    t.train();
  }
  const std::string scores = (fs::path(o.out) / "scores.csv").string(),
                    ckpt = (fs::path(o.out) / "checkpoint.pt").string();
  std::string out, err;
  REQUIRE(score({"--checkpoint", ckpt, "--csv", o.test_csv, "--out", scores, "--threads", "1", "--quiet"},
                out, err) == 0);
  CHECK(err.empty());
  const auto mine = column_by_name(scores, "prediction");
  const auto trainer = column_by_name((fs::path(o.out) / "predictions.csv").string(), "prediction");
  REQUIRE(trainer.size() == 8);
  CHECK(mine == trainer);  // the same decimal text: bit for bit (shortest round-trip form of each double)
  // The MOS column of the trainer's file is the test CSV's.
  CHECK(column_by_name((fs::path(o.out) / "predictions.csv").string(), "mos").count("images/test/s12.png") ==
        1);
}

}  // namespace

TEST_CASE("ohem-score: predictions equal train_pairwise's own test predictions bit for bit", "[score]") {
  expect_trainer_predictions<train_pairwise::Trainer>("resnet18");
}

TEST_CASE("ohem-score: predictions equal train_mos's own test predictions bit for bit, --arch cnniqa",
          "[score]") {
  expect_trainer_predictions<train_mos::Trainer>("cnniqa");
}

TEST_CASE("ohem-score: --images lists a folder recursively, --skip-bad lists what it skipped", "[score]") {
  TrainOptions o = score_options("cnniqa");
  o.test_csv.clear();
  o.train_fraction = 0.6;
  {
    train_pairwise::Trainer t(o);
    t.train();
  }
  const std::string ckpt = (fs::path(o.out) / "checkpoint.pt").string();
  const fs::path images = fs::path(o.csv).parent_path() / "images";
  std::string out, err;
  const std::string all = (fs::path(o.out) / "all.csv").string();
  REQUIRE(score({"--checkpoint", ckpt, "--images", images.string(), "--out", all, "--quiet"}, out, err) == 0);
  const auto by_name = column_by_name(all, "prediction");
  CHECK(by_name.size() == 20);
  CHECK(by_name.count("test/s12.png") == 1);  // relative to --images, '/' separators
  CHECK(by_name.count("s0.png") == 1);
  const std::string image = (images / "s0.png").string(), before = ohem_test::read_file(image);
  CHECK(score({"--checkpoint", ckpt, "--images", images.string(), "--out", image}, out, err) == 1);
  CHECK(err.find("is one of the images to score") != std::string::npos);
  CHECK(ohem_test::read_file(image) == before);

  // A corrupt image and a missing one: errors naming file and row, or skipped and listed.
  const fs::path bad_dir = ohem_test::temp_path("score_bad");
  fs::create_directories(bad_dir);
  fs::copy_file(images / "s0.png", bad_dir / "good.png");
  std::ofstream(bad_dir / "broken.png") << "not a png";
  std::ofstream(bad_dir / "list.csv") << "image,mos\ngood.png,1\nbroken.png,2\nmissing.png,3\n";
  const std::string list = (bad_dir / "list.csv").string(), listed = (bad_dir / "scores.csv").string();
  CHECK(score({"--checkpoint", ckpt, "--csv", list, "--out", listed}, out, err) == 1);
  CHECK(err.find("list.csv:4") != std::string::npos);  // missing.png: checked while listing
  CHECK_FALSE(fs::exists(listed));
  std::ofstream(bad_dir / "list.csv") << "image,mos\ngood.png,1\nbroken.png,2\n";
  CHECK(score({"--checkpoint", ckpt, "--csv", list, "--out", listed}, out, err) == 1);
  CHECK(err.find("list.csv:3") != std::string::npos);
  CHECK(err.find("broken.png") != std::string::npos);
  CHECK_FALSE(fs::exists(listed));
  std::ofstream(bad_dir / "list.csv") << "image,mos\ngood.png,1\nbroken.png,2\nmissing.png,3\n";
  CHECK(score({"--checkpoint", ckpt, "--csv", list, "--out", listed, "--skip-bad"}, out, err) == 0);
  CHECK(err.find("skipped 2 image(s)") != std::string::npos);
  CHECK(column_by_name(listed, "prediction").size() == 1);
  // The same image scores the same from the folder and from the list (in another batch: to rounding).
  CHECK(std::abs(std::stod(column_by_name(listed, "prediction").at("good.png")) -
                 std::stod(by_name.at("s0.png"))) <= 1e-6);
}

TEST_CASE("ohem-score: bad command lines and outputs are refused before any work", "[score]") {
  const auto [train, test] = score_fixture();
  std::string out, err;
  CHECK(score({"--checkpoint", train}, out, err) == 1);
  CHECK(err.find("nothing to do") != std::string::npos);
  CHECK(score({"--checkpoint", train, "--csv", test, "--out", test}, out, err) == 1);
  CHECK(err.find("--out") != std::string::npos);  // the output would overwrite an input
  CHECK(score({"--checkpoint", train, "--csv", test, "--out", test + ".scores.csv"}, out, err) == 1);
  CHECK(err.find("cannot read checkpoint") != std::string::npos);
  CHECK(score({"--checkpoint", train, "--images", "x", "--csv", test, "--out", "y.csv"}, out, err) == 1);
  CHECK(err.find("excludes") != std::string::npos);
  CHECK(score({"--checkpoint", train, "--crops", "3", "--export", "m.pt"}, out, err) == 1);
  CHECK(score({"--help"}, out, err) == 0);
  CHECK(out.find("--export") != std::string::npos);
}

namespace {

// A python3 that imports torch (Debian's python3-torch), or empty.
std::string python_with_torch() {
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(candidate) + " -c 'import torch' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return candidate;
  }
  return {};
}

// Trains a tiny ResNet MOS model; exports it; returns {checkpoint, exported file, ohem-score's scores CSV,
// test CSV}.
struct Exported {
  std::string checkpoint, model, scores, test_csv;
};
Exported exported_model() {
  static Exported e;
  if (!e.model.empty()) return e;
  TrainOptions o = score_options("resnet18");
  o.test_crop = 16;  // one input size: the exported model sees one batch
  {
    train_mos::Trainer t(o);
    t.train();
  }
  e.checkpoint = (fs::path(o.out) / "checkpoint.pt").string();
  e.model = (fs::path(o.out) / "model.pt").string();
  e.scores = (fs::path(o.out) / "scores.csv").string();
  e.test_csv = o.test_csv;
  std::string out, err;
  REQUIRE(score({"--checkpoint", e.checkpoint, "--csv", e.test_csv, "--out", e.scores, "--export", e.model,
                 "--quiet"},
                out, err) == 0);
  return e;
}

// The test images through the run's test transform, as one batch in the CSV's order, with the names.
std::pair<torch::Tensor, std::vector<std::string>> test_batch(const Exported& e) {
  const TrainedModel m = load_trained_model(e.checkpoint);
  const CsvFile csv = read_csv(e.test_csv, true);
  std::vector<torch::Tensor> xs;
  std::vector<std::string> names;
  for (const auto& row : csv.rows) {
    names.push_back(row.second.at(0));
    xs.push_back(
        m.transform(to_float_chw(load_image((fs::path(e.test_csv).parent_path() / names.back()).string()))));
  }
  return {torch::stack(xs), names};
}

}  // namespace

TEST_CASE("ohem-score --export: torch::jit::load gives ohem-score's predictions, without ohem", "[score]") {
  const Exported e = exported_model();
  torch::jit::Module script = torch::jit::load(e.model);
  torch::jit::ExtraFilesMap extra{{"ohem.json", ""}};
  torch::jit::load(e.model, c10::nullopt, extra);
  const nlohmann::json info = nlohmann::json::parse(extra.at("ohem.json"));
  CHECK(info.at("trainer") == "train_mos");
  CHECK(info.at("test_crop") == 16);
  CHECK(info.at("test_resize") == 0);
  // Only the model: no masks, no twin.
  for (const auto& p : script.named_parameters(true)) CHECK(p.name.find("mask") == std::string::npos);
  const auto [x, names] = test_batch(e);
  const torch::Tensor p = script.forward({x}).toTensor().to(torch::kDouble);
  const auto scores = column_by_name(e.scores, "prediction");
  REQUIRE(p.numel() == static_cast<int64_t>(names.size()));
  for (size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    CHECK(std::abs(p[static_cast<int64_t>(i)].item<double>() - std::stod(scores.at(names[i]))) <= 1e-6);
  }
  // The exported file starts a run of the same net (--init-from reads TorchScript files by name).
  MosNet fresh("resnet18", 4);
  CHECK(load_model_weights(*fresh, e.model) ==
        static_cast<int64_t>(fresh->parameters().size() + fresh->buffers().size()));
}

TEST_CASE("ohem-score --export: torch.jit.load in Python gives ohem-score's predictions", "[score][python]") {
  const std::string python = python_with_torch();
  if (python.empty()) OHEM_SKIP("no python3 with torch (Debian's python3-torch)");
  const Exported e = exported_model();
  const auto [x, names] = test_batch(e);
  const fs::path dir = fs::path(e.model).parent_path();
  const torch::Tensor xf = x.to(torch::kFloat).contiguous();
  std::ofstream((dir / "x.bin").string(), std::ios::binary)
      .write(static_cast<const char*>(xf.data_ptr()),
             static_cast<std::streamsize>(xf.numel() * sizeof(float)));
  std::ofstream((dir / "check.py").string())
      << "import sys, numpy, torch\n"
         "m = torch.jit.load(sys.argv[1])\n"
         "x = torch.from_numpy(numpy.fromfile(sys.argv[2], dtype=numpy.float32).reshape("
      << x.size(0) << ", " << x.size(1) << ", " << x.size(2) << ", " << x.size(3)
      << "))\n"
         "with torch.no_grad():\n"
         "    print('\\n'.join(repr(float(v)) for v in m(x)))\n";
  const std::string cmd = python + " " + (dir / "check.py").string() + " " + e.model + " " +
                          (dir / "x.bin").string() + " > " + (dir / "python.txt").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::istringstream lines(ohem_test::read_file((dir / "python.txt").string()));
  const auto scores = column_by_name(e.scores, "prediction");
  for (const auto& name : names) {
    double v = 0;
    REQUIRE(lines >> v);
    INFO(name);
    CHECK(std::abs(v - std::stod(scores.at(name))) <= 1e-6);
  }
}

TEST_CASE("ohem-score --device cuda gives the CPU's predictions", "[.][cuda]") {
  OHEM_REQUIRE_CUDA();
  const Exported e = exported_model();
  const std::string on_gpu = e.scores + ".cuda.csv";
  std::string out, err;
  REQUIRE(score({"--checkpoint", e.checkpoint, "--csv", e.test_csv, "--out", on_gpu, "--device", "cuda",
                 "--quiet"},
                out, err) == 0);
  const auto cpu = column_by_name(e.scores, "prediction"), gpu = column_by_name(on_gpu, "prediction");
  REQUIRE(cpu.size() == gpu.size());
  for (const auto& [name, v] : cpu) CHECK(std::abs(std::stod(v) - std::stod(gpu.at(name))) <= 1e-4);
}

TEST_CASE("trainers: --test sets are evaluated every epoch and at the end, per set", "[score][trainer]") {
  TrainOptions o = score_options("cnniqa");
  o.epochs2 = 2;
  o.tests = {"again=generic:" + o.test_csv, "train-set=generic:" + o.csv};
  {
    train_mos::Trainer t(o);
    t.train();
  }
  std::ifstream in((fs::path(o.out) / "results.json").string());
  const nlohmann::json results = nlohmann::json::parse(in);
  // The same images as the run's own test split give the same correlations.
  CHECK(results.at("tests").at("again").at("srcc") == results.at("srcc"));
  CHECK(results.at("tests").at("again").at("plcc") == results.at("plcc"));
  CHECK(results.at("tests").at("again").at("count") == 8);
  CHECK(results.at("tests").at("again").at("by_type").contains("noise"));
  CHECK(results.at("tests").at("train-set").at("count") == 12);
  // The first epoch's log line holds every set (the last epoch's results are the final ones).
  std::ifstream log((fs::path(o.out) / "log.jsonl").string());
  int epochs_with_sets = 0;
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("event", "") == "epoch" && j.contains("tests")) {
      CHECK(j.at("tests").contains("again"));
      CHECK(j.at("tests").at("again").at("srcc") == j.at("srcc"));
      ++epochs_with_sets;
    }
  }
  CHECK(epochs_with_sets == 1);

  // A resume may drop or add --test sets (they are not part of the run): extended by one epoch without.
  TrainOptions more = o;
  more.tests = {"other=generic:" + o.test_csv};
  more.epochs2 = 3;
  more.resume = (fs::path(o.out) / "checkpoint.pt").string();
  {
    train_mos::Trainer t(more);
    t.train();
  }
  const nlohmann::json extended =
      nlohmann::json::parse(ohem_test::read_file((fs::path(o.out) / "results.json").string()));
  CHECK(extended.at("tests").contains("other"));
  CHECK_FALSE(extended.at("tests").contains("again"));

  TrainOptions bad = score_options("cnniqa");
  for (const auto& [value, message] :
       std::vector<std::pair<std::string, std::string>>{{"nameonly", "expected NAME=FORMAT:CSV"},
                                                        {"x=jpeg:a.csv", "unknown format \"jpeg\""},
                                                        {"test=generic:a.csv", "is the run's own test split"},
                                                        {"a b=generic:a.csv", "letters, digits"}}) {
    bad.tests = {value};
    CHECK_THROWS_WITH(train_mos::Trainer(bad), Catch::Contains(message));
  }
  bad.tests = {"a=generic:" + o.csv, "a=generic:" + o.csv};
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Catch::Contains("is given twice"));
  bad.tests.clear();
  bad.test_csv.clear();
  bad.split = "kadid-longtail";
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Catch::Contains("needs --format kadid10k"));
}

TEST_CASE("trainers: --val-fraction chooses the epoch on validation images only, best.pt, resumed exactly",
          "[score][trainer]") {
  TrainOptions o = score_options("cnniqa");
  o.epochs2 = 3;
  o.val_fraction = 0.25;  // 12 training images (no contents): 9 train, 3 validate
  o.lr = 3e-3;
  nlohmann::json results;
  {
    train_mos::Trainer t(o);
    CHECK(t.split().train.size() == 9);
    t.train();
  }
  results = nlohmann::json::parse(ohem_test::read_file((fs::path(o.out) / "results.json").string()));
  const nlohmann::json sel = results.at("selection");
  REQUIRE(sel.is_object());
  CHECK(sel.at("val_images") == 3);
  CHECK(sel.at("best_stage") == 2);
  const int64_t best = sel.at("best_epoch").get<int64_t>();
  CHECK((best >= 0 && best <= 2));
  // Every epoch's log line holds the validation SRCC; the chosen epoch is the first with the largest.
  std::vector<double> val;
  std::istringstream log(ohem_test::read_file((fs::path(o.out) / "log.jsonl").string()));
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("event", "") == "epoch") val.push_back(j.at("val").at("srcc").get<double>());
  }
  REQUIRE(val.size() == 3);
  CHECK(std::max_element(val.begin(), val.end()) - val.begin() == best);
  CHECK(sel.at("best_val_srcc").get<double>() == val[static_cast<size_t>(best)]);
  // The chosen epoch's test results are those of best.pt's weights (scored by ohem-score).
  const std::string scores = (fs::path(o.out) / "best_scores.csv").string();
  std::string out, err;
  REQUIRE(score({"--checkpoint", (fs::path(o.out) / "best.pt").string(), "--csv", o.test_csv, "--out", scores,
                 "--threads", "1", "--quiet"},
                out, err) == 0);
  const auto predicted = column_by_name(scores, "prediction");
  const auto mos = column_by_name((fs::path(o.out) / "predictions.csv").string(), "mos");
  std::vector<double> p, m;
  for (const auto& [name, v] : predicted) {
    p.push_back(std::stod(v));
    m.push_back(std::stod(mos.at(name)));
  }
  CHECK(ohem::srcc(p, m) == Approx(sel.at("test").at("srcc").get<double>()).margin(1e-12));
  CHECK(ohem::plcc(p, m) == Approx(sel.at("test").at("plcc").get<double>()).margin(1e-12));
  if (best != 2) CHECK(sel.at("test").at("srcc") != results.at("srcc"));  // the last epoch's differ

  // Interrupted after 2 epochs and extended to 3 on resume: the same choice and results.
  TrainOptions first = o;
  first.epochs2 = 2;
  first.out = ohem_test::temp_path("score_val_resume");
  {
    train_mos::Trainer t(first);
    t.train();
  }
  TrainOptions second = first;
  second.epochs2 = 3;
  second.resume = (fs::path(first.out) / "checkpoint.pt").string();
  {
    train_mos::Trainer t(second);
    t.train();
  }
  const nlohmann::json resumed =
      nlohmann::json::parse(ohem_test::read_file((fs::path(first.out) / "results.json").string()))
          .at("selection");
  CHECK(resumed.at("best_epoch") == sel.at("best_epoch"));
  CHECK(resumed.at("best_val_srcc") == sel.at("best_val_srcc"));
  CHECK(resumed.at("test") == sel.at("test"));

  TrainOptions bad = score_options("cnniqa");
  bad.val_fraction = 1.0;
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Catch::Contains("--val-fraction must be in [0, 1)"));
  bad.val_fraction = 0.1;  // 12 training images: 11 train, 1 validates, whose SRCC is undefined
  CHECK_THROWS_WITH(train_mos::Trainer(bad), Catch::Contains("leaves 1 validation image(s)"));
}

TEST_CASE("trainers: --device is checked before any work, cuda refused where there is none",
          "[score][trainer]") {
  TrainOptions o = score_options("cnniqa");
  {
    train_mos::Trainer t(o);  // a run in --out, which a refused --overwrite must leave alone
    t.train();
  }
  o.overwrite = true;
  o.device = "tpu";
  CHECK_THROWS_WITH(train_mos::Trainer(o),
                    Catch::Contains("--device must be cpu, cuda or cuda:N, got \"tpu\""));
  CHECK(fs::exists(fs::path(o.out) / "checkpoint.pt"));
  CHECK(fs::exists(fs::path(o.out) / "results.json"));
  o.device = "cuda:99";
  if (torch::cuda::is_available()) {
    CHECK_THROWS_WITH(train_mos::Trainer(o), Catch::Contains("CUDA devices"));
  } else {
    CHECK_THROWS_WITH(train_mos::Trainer(o), Catch::Contains("no CUDA device is available"));
  }
}

TEST_CASE("trainers on CUDA: the first step's loss is the CPU's within 1e-4", "[.][cuda]") {
  OHEM_REQUIRE_CUDA();
  TrainOptions o = score_options("resnet18");
  o.max_steps = 2;
  std::vector<double> first_losses;
  for (const char* device : {"cpu", "cuda"}) {
    o.device = device;
    o.out = ohem_test::temp_path(std::string("score_cuda_") + device);
    train_pairwise::Trainer t(o);
    t.step();
    first_losses.push_back(NAN);
    std::ifstream log((fs::path(o.out) / "log.jsonl").string());
    for (std::string line; std::getline(log, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.value("event", "") == "step") {
        first_losses.back() = j.at("loss").get<double>();
        break;
      }
    }
  }
  REQUIRE(first_losses.size() == 2);
  CHECK(std::abs(first_losses[0] - first_losses[1]) <= 1e-4 * std::max(1.0, std::abs(first_losses[0])));
}

TEST_CASE("select_device (--device): cpu, cuda, cuda:N, and under a launcher each rank on cuda:LOCAL_RANK",
          "[score][device]") {
  // select_device is given the device count, so every case runs without a GPU.
  CHECK(select_device("cpu", 0) == torch::Device(torch::kCPU));
  CHECK(select_device("cpu", 2, {4, 3}) == torch::Device(torch::kCPU));  // CPU ranks need no device
  CHECK(select_device("cuda", 2) == torch::Device("cuda"));
  CHECK(select_device("cuda:1", 2) == torch::Device(torch::kCUDA, 1));
  CHECK(select_device("cuda", 2, {2, 1}) == torch::Device(torch::kCUDA, 1));
  CHECK(select_device("cuda", 8, {16, 7}) == torch::Device(torch::kCUDA, 7));
  CHECK(select_device("cuda:0", 1, {1, 0}) == torch::Device(torch::kCUDA, 0));  // a launcher with one rank
  CHECK_THROWS_WITH(select_device("gpu", 1),
                    Catch::Contains("--device must be cpu, cuda or cuda:N, got \"gpu\""));
  CHECK_THROWS_WITH(select_device("mps", 1),
                    Catch::Contains("--device must be cpu, cuda or cuda:N, got \"mps\""));
  CHECK_THROWS_WITH(select_device("cuda", 0), Catch::Contains("no CUDA device is available"));
  CHECK_THROWS_WITH(select_device("cuda:2", 2), Catch::Contains("--device cuda:2: there are 2 CUDA devices"));
  CHECK_THROWS_WITH(select_device("cuda:0", 2, DevicePlacement{2, 1}),
                    Catch::Contains("under a launcher with 2 processes every rank would use device 0"));
  CHECK_THROWS_WITH(select_device("cuda", 2, DevicePlacement{4, 2}),
                    Catch::Contains("this process is LOCAL_RANK 2 but there are 2 CUDA devices"));
}
