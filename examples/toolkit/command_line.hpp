#pragma once
/// @file
/// The example trainers' options and their command line. One table (`visit_train_options`) names every
/// option once, with its help text and whether it defines the run; from it come the CLI11 command line
/// (`add_train_options`), the run's configuration as JSON (`run_config`, stored in every checkpoint) and
/// the comparison a resume makes (`resume_differences`).

#include "backbones.hpp"
#include "threads.hpp"

#include <ohem/enum_names.hpp>
#include <ohem/masks.hpp>
#include <ohem/ohem_loss.hpp>
#include <ohem/runtime.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/twin.hpp>

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Options of the example trainers (command-line flags in brackets; `--help` lists them). Defaults are
/// the paper's public recipe where it has one; the OHEM defaults are the library's own option defaults.
struct TrainOptions {
  // Data
  std::string format = "generic";  ///< [--format] koniq10k | kadid10k | live_challenge | spaq | generic
  std::string csv;                 ///< [--csv] metadata file
  std::string images;              ///< [--images] image directory (generic: defaults to the CSV's directory)
  std::string test_csv;            ///< [--test-csv] a separate test set (then all of --csv trains)
  std::string test_format;         ///< [--test-format] its format (default: --format)
  std::string test_images;         ///< [--test-images] its image directory
  /// [--test] extra test sets NAME=FORMAT:CSV[:IMAGES], each evaluated every epoch and at the end
  std::vector<std::string> tests;
  std::string split = "auto";   ///< [--split] image | group | auto (group when images share a reference)
  double train_fraction = 0.8;  ///< [--train-fraction] share of images (or groups) used for training
  double val_fraction =
      0.0;  ///< [--val-fraction] share of the training images (or contents) that choose the epoch
  uint64_t split_seed = 0;        ///< [--split-seed] seed of the split (the paper: 10 random splits)
  bool skip_bad_rows = false;     ///< [--skip-bad-rows] skip malformed rows / missing images with a warning
  bool cache = false;             ///< [--cache] keep decoded, resized images in memory
  int64_t max_pixels = 64000000;  ///< [--max-pixels] largest image decoded (image.hpp's kDefaultMaxPixels)
  std::string label = "binary";   ///< [--label] pairwise labels: binary (official code) | thurstone (UNIQUE)
  // Model
  std::string arch = "resnet18";  ///< [--arch] resnet18 | resnet50 | cnniqa
  int64_t width = 64;             ///< [--width] ResNet base width (64 = torchvision); CNNIQA's kernels
  std::string pretrained;         ///< [--pretrained] TorchScript file with torchvision weights
  std::string init_from;          ///< [--init-from] the whole net's starting weights: a trainer checkpoint or
                                  ///< a TorchScript file of the same net (a stand-in for pretraining)
  // Transforms
  int64_t resize = 512;       ///< [--resize] training short side
  int64_t crop = 384;         ///< [--crop] training crop
  int64_t test_resize = 768;  ///< [--test-resize] test short side
  int64_t test_crop = 0;      ///< [--test-crop] test centre crop (0: whole image)
  bool flip = true;           ///< [--flip on|off]
  // OHEM (defaults: the library's, which are the recipe's)
  bool ohem = true;                                                      ///< [--ohem on|off]
  double ratio = ohem::MaskOptions().ratio();                            ///< [--ratio] pruning ratio
  ohem::BatchNormPolicy batchnorm = ohem::TwinOptions().batchnorm();     ///< [--batchnorm]
  ohem::SelfCompetitorMode mode = ohem::SelfCompetitorOptions().mode();  ///< [--mode joint|sequential]
  double alpha = ohem::OhemLossOptions().alpha();             ///< [--alpha] weight of the twin's task loss
  double lambda = ohem::OhemLossOptions().lambda();           ///< [--lambda] weight of the consistency
  int64_t twins = ohem::SelfCompetitorOptions().num_twins();  ///< [--twins] number K of twins
  ohem::MaskCriterion mask_criterion = ohem::MaskOptions().criterion();  ///< [--mask-criterion]
  double mask_random_fraction = ohem::MaskOptions().random_fraction();   ///< [--mask-random-fraction]
  /// [--mask-layers] conv (the recipe) | conv+linear (also every Linear layer except the head)
  std::string mask_layers = "conv";
  /// [--mask-exclude] regular expressions of parameter names the twin leaves dense
  std::vector<std::string> mask_exclude;
  /// [--twin-crops] same (the recipe) | independent (the twin sees its own crops and flips)
  std::string twin_crops = "same";
  // Schedule (recipe: stage 1 head only 3 epochs batch 128, stage 2 all 12 epochs batch 32)
  int64_t epochs1 = 3, epochs2 = 12;  ///< [--epochs1] [--epochs2]
  int64_t batch1 = 128, batch2 = 32;  ///< [--batch1] [--batch2]
  double lr = 1e-4;                   ///< [--lr] Adam learning rate
  double weight_decay = 5e-4;         ///< [--weight-decay]
  int64_t lr_step = 3;                ///< [--lr-step] StepLR step in epochs
  double gamma = 0.2;                 ///< [--gamma] StepLR factor
  int64_t max_steps = 0;              ///< [--max-steps] stop after this many steps in all (0: no limit)
  // Runtime
  int threads = 1;                 ///< [--threads] torch threads (command line: the cores available)
  std::string device = "cpu";      ///< [--device] cpu | cuda | cuda:N
  uint64_t seed = 0;               ///< [--seed] initialisation, pairs and augmentation
  std::string out = "runs/train";  ///< [--out] output directory (log.jsonl, results.json, ...)
  std::string resume;              ///< [--resume] checkpoint to resume from
  bool overwrite = false;          ///< [--overwrite] replace the run already in --out
  int64_t checkpoint_every = 0;    ///< [--checkpoint-every] also every N steps (0: epoch ends only)
  int64_t eval_batch = 16;         ///< [--eval-batch]
  bool eval_every_epoch = true;    ///< [--eval-every-epoch on|off]
  int64_t hardest = 100;           ///< [--hardest] rows of hardest.csv
  bool progress = true;            ///< [--progress on|off]
  bool quiet = false;              ///< [--quiet] no console output except errors
};

/// What an option is to a resumed run.
enum class OptionRole {
  Run,       ///< defines the run: a resume must give the checkpoint's value
  Schedule,  ///< an epoch count: the last stage's may grow on resume (extends the run), else as Run
  Runtime,   ///< may change on resume (threads, output, logging, where to stop)
};

/// One row of the option table.
struct OptionInfo {
  OptionInfo(const char* name_, const char* help_, OptionRole role_ = OptionRole::Run, bool flag_ = false,
             std::vector<std::string> choices_ = {})
      : name(name_), help(help_), role(role_), flag(flag_), choices(std::move(choices_)) {}
  const char* name;                  ///< the flag, e.g. "--width"
  const char* help;                  ///< one line for --help
  OptionRole role;                   ///< what the option is to a resumed run
  bool flag;                         ///< a flag without a value (`--cache`)
  std::vector<std::string> choices;  ///< the allowed values of a string option (empty: any)
};

/// Calls `f(const OptionInfo&, member&)` for every option of `o`, in --help order: the one table of
/// the trainers' options. `Options` is `TrainOptions` or `const TrainOptions`.
template <typename Options, typename F>
void visit_train_options(Options& o, F&& f) {
  static_assert(std::is_same_v<std::remove_const_t<Options>, TrainOptions>, "visits TrainOptions");
  using R = OptionRole;
  // data
  f(OptionInfo{"--format",
               "metadata format",
               R::Run,
               false,
               {"koniq10k", "kadid10k", "live_challenge", "spaq", "generic"}},
    o.format);
  f(OptionInfo{"--csv", "metadata file (required)"}, o.csv);
  f(OptionInfo{"--images", "image directory (generic: paths relative to the CSV's directory)"}, o.images);
  f(OptionInfo{"--test-csv", "a separate test set (then all of --csv trains)"}, o.test_csv);
  f(OptionInfo{"--test-format", "format of --test-csv (default: --format)"}, o.test_format);
  f(OptionInfo{"--test-images", "image directory of --test-csv"}, o.test_images);
  f(OptionInfo{"--test",
               "an extra test set NAME=FORMAT:CSV[:IMAGES] (repeatable): evaluated after every epoch and at "
               "the end, "
               "results per set in log.jsonl and results.json",
               R::Runtime},
    o.tests);
  f(OptionInfo{"--split",
               "split unit (auto: group when images share a reference); kadid-longtail, kadid-balanced: the "
               "paper's KADID-10k protocol (--format kadid10k; 65/16 contents, --train-fraction unused)",
               R::Run,
               false,
               {"image", "group", "auto", "kadid-longtail", "kadid-balanced"}},
    o.split);
  f(OptionInfo{"--train-fraction", "share of images (or groups) used for training"}, o.train_fraction);
  f(OptionInfo{"--val-fraction",
               "share of the training images (or contents) held out to choose the epoch: best.pt, and test "
               "results "
               "for the chosen epoch as well as the last (0: none, the recipe)"},
    o.val_fraction);
  f(OptionInfo{"--split-seed", "seed of the train/test split"}, o.split_seed);
  f(OptionInfo{"--skip-bad-rows", "skip malformed rows and missing images with a warning", R::Run, true},
    o.skip_bad_rows);
  f(OptionInfo{"--cache", "keep decoded, resized images in memory", R::Runtime, true}, o.cache);
  f(OptionInfo{"--max-pixels", "largest image (width x height) decoded; larger ones are refused", R::Runtime},
    o.max_pixels);
  f(OptionInfo{"--label",
               "pairwise labels: binary (official code) or thurstone (UNIQUE)",
               R::Run,
               false,
               {"binary", "thurstone"}},
    o.label);
  // model
  f(OptionInfo{"--arch", "backbone", R::Run, false, backbone_names()}, o.arch);
  f(OptionInfo{"--width",
               "ResNet base width (64 = torchvision); cnniqa: its convolution kernels (paper: 50)"},
    o.width);
  f(OptionInfo{"--pretrained", "TorchScript file with torchvision weights"}, o.pretrained);
  f(
      OptionInfo{
          "--init-from",
          "start from the whole net's weights in a trainer checkpoint or a TorchScript file of the same net "
          "(the first stage's masks come from them)"},
      o.init_from);
  // images
  f(OptionInfo{"--resize", "training short side (0: as is)"}, o.resize);
  f(OptionInfo{"--crop", "training crop"}, o.crop);
  f(OptionInfo{"--test-resize", "test short side (0: as is)"}, o.test_resize);
  f(OptionInfo{"--test-crop", "test centre crop (0: whole image)"}, o.test_crop);
  f(OptionInfo{"--flip", "random horizontal flip"}, o.flip);
  // OHEM
  f(OptionInfo{"--ohem", "train with the self-competitor"}, o.ohem);
  f(OptionInfo{"--ratio", "pruning ratio of the twin"}, o.ratio);
  f(OptionInfo{"--batchnorm", "BatchNorm statistics of the twin: shared, frozen or separate"}, o.batchnorm);
  f(OptionInfo{"--mode", "joint (the recipe) or sequential (less activation memory)"}, o.mode);
  f(OptionInfo{"--alpha", "weight of the twin's task loss"}, o.alpha);
  f(OptionInfo{"--lambda", "weight of the consistency term"}, o.lambda);
  f(OptionInfo{"--twins", "number K of pruned twins (each with its own mask seed)"}, o.twins);
  f(OptionInfo{"--mask-criterion",
               "how the twin's masks are chosen: magnitude (the recipe: global "
               "magnitude), layer-magnitude, random (same ratio) or structured-l1"},
    o.mask_criterion);
  f(OptionInfo{"--mask-random-fraction", "extra random pruning of the surviving weights (seeded per twin)"},
    o.mask_random_fraction);
  f(OptionInfo{"--mask-layers",
               "which layers the twin masks: conv (the recipe: every convolution) or conv+linear (also every "
               "Linear layer except the head that stage 1 trains)",
               R::Run,
               false,
               {"conv", "conv+linear"}},
    o.mask_layers);
  f(OptionInfo{"--mask-exclude", "regular expression of parameter names the twin leaves dense (repeatable)"},
    o.mask_exclude);
  f(OptionInfo{"--twin-crops",
               "what the twin sees: same (the recipe: the full model's crops) or independent (the same "
               "images with their own random crop and flip, as the official code's KADID variant)",
               R::Run,
               false,
               {"same", "independent"}},
    o.twin_crops);
  // schedule
  f(OptionInfo{"--epochs1", "epochs of stage 1 (backbone frozen; 0 skips it)", R::Schedule}, o.epochs1);
  f(OptionInfo{"--epochs2", "epochs of stage 2 (everything; 0 skips it)", R::Schedule}, o.epochs2);
  f(OptionInfo{"--batch1", "batch of stage 1"}, o.batch1);
  f(OptionInfo{"--batch2", "batch of stage 2"}, o.batch2);
  f(OptionInfo{"--lr", "Adam learning rate"}, o.lr);
  f(OptionInfo{"--weight-decay", "Adam weight decay"}, o.weight_decay);
  f(OptionInfo{"--lr-step", "StepLR step in epochs"}, o.lr_step);
  f(OptionInfo{"--gamma", "StepLR factor"}, o.gamma);
  f(OptionInfo{"--max-steps", "stop after this many steps in all (0: no limit)", R::Runtime}, o.max_steps);
  // runtime
  f(
      OptionInfo{
          "--device",
          "where the model trains: cpu, cuda or cuda:N (under a launcher: cuda, each rank on cuda:LOCAL_RANK "
          "with NCCL where the build has it; images are decoded on the CPU)",
          R::Runtime},
      o.device);
  f(OptionInfo{"--threads", torch_threads_help(), R::Runtime}, o.threads);
  f(OptionInfo{"--seed", "seed of initialisation, pairs and augmentation"}, o.seed);
  f(OptionInfo{"--out",
               "output directory (log.jsonl, results.json, predictions.csv, hardest.csv, checkpoint.pt)",
               R::Runtime},
    o.out);
  f(OptionInfo{"--resume", "checkpoint to resume from; auto: --out's checkpoint if any, else a fresh run",
               R::Runtime},
    o.resume);
  f(OptionInfo{"--overwrite", "replace the run already in --out", R::Runtime, true}, o.overwrite);
  f(OptionInfo{"--checkpoint-every", "also checkpoint every N steps (0: at epoch ends only)", R::Runtime},
    o.checkpoint_every);
  f(OptionInfo{"--eval-batch", "images per evaluation batch", R::Runtime}, o.eval_batch);
  f(OptionInfo{"--eval-every-epoch", "evaluate on the test split after each epoch", R::Runtime},
    o.eval_every_epoch);
  f(OptionInfo{"--hardest", "rows of hardest.csv", R::Runtime}, o.hardest);
  f(OptionInfo{"--progress", "progress bars", R::Runtime}, o.progress);
  f(OptionInfo{"--quiet", "no console output except errors", R::Runtime, true}, o.quiet);
}

namespace detail {

/// An option's value as JSON (enums by their command-line spelling).
template <typename T>
nlohmann::json json_value(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    return ohem::enum_key(v);
  } else {
    return v;
  }
}

/// Rejects a negative value for an unsigned option (CLI11 would wrap it around).
inline CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& v) {
        return !v.empty() && v[0] == '-' ? "expects a non-negative integer, got " + v : std::string();
      },
      "", "non-negative");
}

/// Adds an enum option spelled by the library's keys of `E` (`ohem::EnumNames`, case-insensitive).
template <typename E>
void add_enum_option(CLI::App& app, const OptionInfo& info, E& value) {
  std::vector<std::string> keys;
  for (const auto& n : ohem::EnumNames<E>::values) keys.emplace_back(n.key);
  std::sort(keys.begin(), keys.end());
  app.add_option_function<std::string>(
         info.name,
         [&value](const std::string& s) {
           std::string k = s;
           for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
           value = ohem::enum_from_key<E>(k).value();  // IsMember below admits only keys
         },
         info.help)
      ->check(CLI::IsMember(keys, CLI::ignore_case))
      ->default_str(ohem::enum_key(value));
}

}  // namespace detail

/// Adds every option of the table to `app`, bound to the fields of `o` (whose values are the defaults
/// shown by --help). Booleans take on|off (also true|false, yes|no, 1|0); enums and string choices are
/// checked by CLI11, numbers converted by CLI11 (a bad value is an error naming the option). `--threads`
/// defaults to `default_threads()` (the cores this process may use): `o.threads` is set to it here.
inline void add_train_options(CLI::App& app, TrainOptions& o) {
  o.threads = default_threads();
  visit_train_options(o, [&](const OptionInfo& info, auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, bool>) {
      if (info.flag) {
        app.add_flag(info.name, v, info.help);
      } else {
        app.add_option(info.name, v, info.help)->type_name("on|off")->default_str(v ? "on" : "off");
      }
    } else if constexpr (std::is_enum_v<T>) {
      detail::add_enum_option(app, info, v);
    } else {
      CLI::Option* opt = app.add_option(info.name, v, info.help)->capture_default_str();
      if constexpr (std::is_unsigned_v<T>) opt->check(detail::non_negative());
      if (!info.choices.empty()) opt->check(CLI::IsMember(info.choices));
    }
  });
}

/// Parses `args` (without the program name) into options starting from `defaults`. Throws CLI11's
/// `CLI::ParseError` on an unknown option, a missing or bad value, and `CLI::CallForHelp` for --help.
inline TrainOptions parse_train_args(const std::vector<std::string>& args, TrainOptions defaults = {}) {
  CLI::App app;
  add_train_options(app, defaults);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  app.parse(reversed);
  return defaults;
}

/// Sets glibc's heap up for training (`ohem::tune_heap_for_training`) at a program's start and prints
/// what it set, once, unless the command line asks for quiet (`--quiet`) or for the help (`--help`, `-h`).
/// Every example program calls it first; see docs/benchmarks.md for what it saves per step.
inline ohem::HeapTuning tune_heap_at_start(int argc, char** argv) {
  const ohem::HeapTuning heap = ohem::tune_heap_for_training();
  bool silent = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    silent = silent || a == "--quiet" || a == "--help" || a == "-h";
  }
  if (!silent) std::cout << heap.description << "\n";
  return heap;
}

/// One `--test NAME=FORMAT:CSV[:IMAGES]` set.
struct TestSetSpec {
  std::string name, format, csv, images;
};

/// Parses `--test` values (`koniq=koniq10k:koniq.csv:koniq/1024x768`, `livec=generic:livec.csv`); throws
/// naming the value if it is malformed, its format unknown or a name repeated (or "test", the run's own).
inline std::vector<TestSetSpec> parse_test_sets(const std::vector<std::string>& values) {
  static const std::set<std::string> formats{"koniq10k", "kadid10k", "live_challenge", "spaq", "generic"};
  std::vector<TestSetSpec> out;
  std::set<std::string> names{"test"};
  for (const auto& v : values) {
    const auto eq = v.find('='), colon = v.find(':', eq == std::string::npos ? 0 : eq);
    TORCH_CHECK(eq != std::string::npos && eq > 0 && colon != std::string::npos && colon > eq + 1 &&
                    colon + 1 < v.size(),
                "--test \"", v,
                "\": expected NAME=FORMAT:CSV[:IMAGES], e.g. livec=live_challenge:livec.csv:Images");
    TestSetSpec t;
    t.name = v.substr(0, eq);
    t.format = v.substr(eq + 1, colon - eq - 1);
    const std::string rest = v.substr(colon + 1);
    const auto images = rest.find(':');
    t.csv = rest.substr(0, images);
    if (images != std::string::npos) t.images = rest.substr(images + 1);
    for (char c : t.name)
      TORCH_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.',
                  "--test \"", v, "\": the name may hold letters, digits, '_', '-' and '.' only");
    TORCH_CHECK(formats.count(t.format) != 0, "--test \"", v, "\": unknown format \"", t.format,
                "\" (koniq10k, kadid10k, live_challenge, spaq or generic)");
    TORCH_CHECK(!t.csv.empty(), "--test \"", v, "\": no CSV file");
    TORCH_CHECK(names.insert(t.name).second, "--test \"", v, "\": the name \"", t.name,
                t.name == "test" ? "\" is the run's own test split" : "\" is given twice");
    out.push_back(t);
  }
  return out;
}

/// Checks option values; throws naming the first bad one.
inline void validate(const TrainOptions& o) {
  parse_test_sets(o.tests);
  TORCH_CHECK(!o.csv.empty(), "no metadata file given (--csv)");
  TORCH_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, "--val-fraction must be in [0, 1), got ",
              o.val_fraction);
  TORCH_CHECK(o.train_fraction > 0 && o.train_fraction < 1, "--train-fraction must be in (0, 1), got ",
              o.train_fraction);
  TORCH_CHECK(o.ratio >= 0 && o.ratio < 1, "--ratio must be in [0, 1), got ", o.ratio);
  TORCH_CHECK(o.twins >= 1 && o.twins <= 64, "--twins must be in [1, 64], got ", o.twins);
  TORCH_CHECK(o.mask_random_fraction >= 0 && o.mask_random_fraction < 1,
              "--mask-random-fraction must be in [0, 1), got ", o.mask_random_fraction);
  TORCH_CHECK(o.epochs1 >= 0 && o.epochs2 >= 0 && o.epochs1 + o.epochs2 > 0,
              "--epochs1 and --epochs2 must be >= 0 and not both 0, got ", o.epochs1, " and ", o.epochs2);
  TORCH_CHECK(o.batch1 >= 2 && o.batch2 >= 2, "--batch1 and --batch2 must be >= 2 (BatchNorm), got ",
              o.batch1, " and ", o.batch2);
  TORCH_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr must be positive, got ", o.lr);
  TORCH_CHECK(o.weight_decay >= 0, "--weight-decay must be >= 0, got ", o.weight_decay);
  TORCH_CHECK(o.lr_step > 0, "--lr-step must be positive, got ", o.lr_step);
  TORCH_CHECK(o.gamma > 0, "--gamma must be positive, got ", o.gamma);
  TORCH_CHECK(o.threads > 0 && o.threads <= kMaxThreads, "--threads must be in [1, ", kMaxThreads, "], got ",
              o.threads);
  TORCH_CHECK(o.width > 0, "--width must be positive, got ", o.width);
  TORCH_CHECK(o.pretrained.empty() || o.init_from.empty(),
              "give --pretrained (torchvision weights for the backbone) or --init-from (the whole net's "
              "weights), not both");
  TORCH_CHECK(
      o.pretrained.empty() || o.arch != "cnniqa",
      "--pretrained loads torchvision ResNet weights; --arch cnniqa has none (use resnet18 or resnet50)");
  TORCH_CHECK(o.resize >= 0 && o.crop >= 0 && o.test_resize >= 0 && o.test_crop >= 0,
              "image sizes must be >= 0");
  TORCH_CHECK(o.crop == 0 || o.resize == 0 || o.crop <= o.resize, "--crop (", o.crop,
              ") must not exceed --resize (", o.resize, ")");
  TORCH_CHECK(o.eval_batch > 0 && o.max_steps >= 0 && o.checkpoint_every >= 0 && o.hardest >= 0,
              "--eval-batch must be positive; --max-steps, --checkpoint-every and --hardest >= 0");
  TORCH_CHECK(!o.out.empty(), "--out must name a directory");
}

/// Returns every option of `o` as a JSON object keyed by flag, in table order: the run's configuration
/// as a checkpoint stores it.
inline nlohmann::ordered_json run_config(const TrainOptions& o) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  visit_train_options(o,
                      [&](const OptionInfo& info, const auto& v) { j[info.name] = detail::json_value(v); });
  return j;
}

/// Compares the options of a resumed run with the configuration stored in its checkpoint. Returns one
/// line per difference that a resume may not make (`--width: checkpoint 16, command line 32`); empty
/// if the resume is the run the checkpoint belongs to. Every `OptionRole::Run` option must be equal;
/// of the epoch counts, the last stage's may grow (extending the run), the others must be equal.
inline std::vector<std::string> resume_differences(const nlohmann::json& saved, const TrainOptions& now) {
  std::vector<std::string> out;
  auto saved_value = [&](const char* name) {
    return saved.contains(name) ? saved.at(name) : nlohmann::json();
  };
  auto differ = [&](const char* name, const nlohmann::json& was, const nlohmann::json& is,
                    const std::string& note = {}) {
    out.push_back(std::string(name) + ": checkpoint " + (was.is_null() ? "(none)" : was.dump()) +
                  ", command line " + is.dump() + note);
  };
  const nlohmann::ordered_json defaults = run_config(TrainOptions());
  visit_train_options(now, [&](const OptionInfo& info, const auto& v) {
    if (info.role != OptionRole::Run) return;
    // An option added after the checkpoint was written: the checkpoint ran with its default.
    const nlohmann::json was =
        saved.contains(info.name) ? saved.at(info.name) : nlohmann::json(defaults.at(info.name));
    const nlohmann::json is = detail::json_value(v);
    if (was != is) differ(info.name, was, is);
  });
  // Epochs: the stages that exist must stay; only the last one may get more epochs.
  const nlohmann::json e1 = saved_value("--epochs1"), e2 = saved_value("--epochs2");
  const bool numbers = e1.is_number_integer() && e2.is_number_integer();
  const int64_t was1 = numbers ? e1.get<int64_t>() : -1, was2 = numbers ? e2.get<int64_t>() : -1;
  const bool stage2 = was2 > 0;  // the last stage is stage 2, else stage 1
  if (!numbers || (stage2 ? now.epochs1 != was1 : now.epochs1 < was1))
    differ("--epochs1", e1, now.epochs1, stage2 ? "" : " (the last stage may only grow)");
  if (!numbers || (stage2 ? now.epochs2 < was2 : now.epochs2 != was2))
    differ("--epochs2", e2, now.epochs2, stage2 ? " (the last stage may only grow)" : "");
  return out;
}

}  // namespace ohem_examples
