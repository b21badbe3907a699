#pragma once
/// @file
/// The `ohem-score` command-line tool as a library (main.cpp only calls `ohem_score::run`, so that the
/// test suite can run it in-process): scores images with a checkpoint of either example trainer and
/// writes `name,prediction`, and exports the trained full model as a TorchScript file. The preprocessing
/// is the run's own test transform, read from the checkpoint's configuration (`load_trained_model`); the
/// batches are formed as the trainers form them, so the predictions equal the trainer's test predictions
/// (its predictions.csv) bit for bit. See docs/scoring.md.

#include <toolkit/command_line.hpp>
#include <toolkit/csv.hpp>
#include <toolkit/device.hpp>
#include <toolkit/export.hpp>
#include <toolkit/files.hpp>
#include <toolkit/image.hpp>
#include <toolkit/io.hpp>
#include <toolkit/models.hpp>
#include <toolkit/threads.hpp>
#include <toolkit/transforms.hpp>

#include <ohem/csv.hpp>
#include <ohem/runtime.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace ohem_score {

using namespace ohem_examples;

/// The command line, parsed.
struct Args {
  std::string checkpoint;
  std::string images;      ///< a folder to score (recursive)
  std::string csv;         ///< or a CSV naming the images
  std::string image_root;  ///< with --csv: where the names are (default: the CSV's folder)
  std::string name_column;
  bool no_header = false;
  std::string out;
  std::string export_path;
  int64_t batch = 0;  ///< 0: the run's --eval-batch
  std::string device = "cpu";
  int threads = 1;  ///< set by add_threads_option (default_threads())
  int64_t crops = 1;
  int64_t crop_size = 0;  ///< 0: the run's --test-crop
  bool skip_bad = false;
  std::string progress = "auto";
  bool quiet = false;
};

/// The image file extensions a folder scan takes (lower case): what stb_image decodes.
inline const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> e{".png", ".jpg", ".jpeg", ".bmp", ".tga",
                                          ".gif", ".pnm", ".ppm",  ".pgm"};
  return e;
}

/// The header names (case-insensitive) that select the name column of --csv: the example datasets'
/// image columns and ohem-eval's aliases.
inline const std::vector<std::string>& name_aliases() {
  static const std::vector<std::string> n{"name",     "image", "image_name", "image name", "img",
                                          "filename", "file",  "path",       "dist_img"};
  return n;
}

/// One image to score: its name in the output, its file, and where it was listed (for messages).
struct Item {
  std::string name, path, where;
};

/// Lists the images under `dir` (recursively, following no links out of it, by extension, sorted by
/// name). Names are the paths relative to `dir`, with '/' separators.
inline std::vector<Item> list_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  TORCH_CHECK(fs::is_directory(dir, ec), "--images: \"", dir, "\" is not a folder");
  std::vector<Item> items;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto& exts = image_extensions();
    if (std::find(exts.begin(), exts.end(), ext) == exts.end()) continue;
    const std::string name = it->path().lexically_relative(dir).generic_string();
    items.push_back(Item{name, it->path().string(), it->path().string()});
  }
  TORCH_CHECK(!ec, "--images: cannot list \"", dir, "\": ", ec.message());
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.name < b.name; });
  TORCH_CHECK(!items.empty(), "--images: no image files (", c10::Join(" ", image_extensions()), ") under \"",
              dir, "\"");
  return items;
}

/// Lists the images a CSV names: the column `name_column` or the first of `name_aliases()` in the header
/// (the first column with `no_header`), resolved against `root` (default: the CSV's folder). Every file
/// must exist unless `skip_missing` (then `missing` gets one line per skipped row).
inline std::vector<Item> list_csv(const Args& a, std::vector<std::string>& missing) {
  namespace fs = std::filesystem;
  check_input_file(a.csv, "--csv");
  const CsvFile csv = read_csv(a.csv, !a.no_header);
  int64_t column = 0;
  if (!a.no_header) {
    column = a.name_column.empty() ? csv.require_column(name_aliases(), "image name")
                                   : csv.require_column({a.name_column}, "--name-column " + a.name_column);
  }
  const fs::path root = a.image_root.empty() ? fs::path(a.csv).parent_path() : fs::path(a.image_root);
  std::vector<Item> items;
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& fields = csv.rows[r].second;
    const std::string where = csv.where(csv.rows[r].first);
    TORCH_CHECK(static_cast<int64_t>(fields.size()) > column, where, ": no field ", column + 1,
                " (the name)");
    const std::string name = trim(fields[static_cast<size_t>(column)]);
    TORCH_CHECK(!name.empty(), where, ": empty image name");
    const std::string path = (root / name).string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      TORCH_CHECK(a.skip_bad, where, ": image file \"", path,
                  "\" does not exist (--skip-bad goes on without it)");
      missing.push_back(fmt::format("{}: \"{}\" does not exist", where, path));
      continue;
    }
    items.push_back(Item{name, path, where});
  }
  TORCH_CHECK(!items.empty(), "--csv \"", a.csv, "\" lists no image that exists");
  return items;
}

/// The `crops` views of side `side` that multi-crop averaging takes of a resized image: the centre and
/// the four corners (5), and their mirror images (10); one view: the centre crop.
inline std::vector<torch::Tensor> crop_views(const torch::Tensor& img, int64_t crops, int64_t side) {
  const int64_t h = img.size(1), w = img.size(2);
  TORCH_CHECK(h >= side && w >= side, "an image of ", h, "x", w, " is smaller than the crop side ", side);
  std::vector<torch::Tensor> v{center_crop(img, side)};
  if (crops == 1) return v;
  for (const auto& [top, left] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, w - side}, {h - side, 0}, {h - side, w - side}})
    v.push_back(img.slice(1, top, top + side).slice(2, left, left + side));
  if (crops == 10)
    for (size_t i = 0; i < 5; ++i) v.push_back(hflip(v[i]));
  return v;
}

/// Builds the CLI11 parser for `a`.
inline void describe(CLI::App& app, Args& a) {
  app.description(
      "Scores images with a checkpoint of train_pairwise or train_mos (docs/scoring.md): the full model\n"
      "with the run's own test transform (its --test-resize and --test-crop, read from the checkpoint),\n"
      "batched as the trainer batches them, so the predictions equal the trainer's test predictions.\n"
      "Writes a CSV `name,prediction` (ohem-eval joins it with a MOS file: --mos). --export writes the\n"
      "trained full model as a TorchScript file that runs without ohem (weights and forward; the\n"
      "preprocessing is stored beside the graph as the extra file ohem.json).");
  app.get_formatter()->column_width(30);
  app.add_option("--checkpoint", a.checkpoint, "checkpoint.pt of a train_pairwise or train_mos run")
      ->required();
  auto* images =
      app.add_option("--images", a.images, "a folder of images to score (recursive; by extension)");
  auto* csv = app.add_option("--csv", a.csv, "or a CSV naming the images to score")->excludes(images);
  app.add_option("--image-root", a.image_root,
                 "with --csv: the folder the names are relative to (default: the "
                 "CSV's folder)")
      ->needs(csv);
  app.add_option(
         "--name-column", a.name_column,
         "with --csv: the column of the names (default: the first of " + c10::Join("|", name_aliases()) + ")")
      ->needs(csv);
  app.add_flag("--no-header", a.no_header,
               "with --csv: the file has no header; the names are its first column")
      ->needs(csv);
  app.add_option("--out", a.out, "the scores: CSV name,prediction (written atomically; never an input)");
  app.add_option("--export", a.export_path, "also (or only) write the full model as a TorchScript file");
  app.add_option("--batch", a.batch, "images per forward (default: the run's --eval-batch)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--device", a.device, "cpu, cuda or cuda:N")->capture_default_str();
  add_threads_option(app, a.threads, "torch threads");
  app.add_option("--crops", a.crops,
                 "1: the run's test transform (default); 5 or 10: the mean over the centre and four corner "
                 "crops (10: and their mirror images) — a deviation from the trainer's evaluation")
      ->capture_default_str()
      ->check(CLI::IsMember({int64_t{1}, int64_t{5}, int64_t{10}}));
  app.add_option("--crop-size", a.crop_size,
                 "with --crops 5|10: the crop side (default: the run's --test-crop)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_flag("--skip-bad", a.skip_bad,
               "go on past an image that is missing or cannot be decoded; list them");
  app.add_option("--progress", a.progress, "progress bar on stderr: auto (on a terminal), on, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_flag("--quiet", a.quiet, "print errors only");
}

/// Runs ohem-score with `argv` (without the program name); writes the console output to `out` and
/// `err`; returns the exit status (0, or 1 with the error on `err`).
inline int run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  Args a;
  CLI::App app("", "ohem-score");
  describe(app, a);
  try {
    std::vector<std::string> reversed(argv.rbegin(), argv.rend());  // CLI11 takes them last first
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "ohem-score: " << e.what() << " (see --help)\n";
    return 1;
  }
  try {
    TORCH_CHECK(!a.out.empty() || !a.export_path.empty(),
                "nothing to do: give --out (scores) or --export (model)");
    TORCH_CHECK(a.out.empty() || !a.images.empty() || !a.csv.empty(),
                "--out needs the images to score: --images DIR or --csv FILE");
    TORCH_CHECK(a.out.empty() == (a.images.empty() && a.csv.empty()),
                "--images / --csv given without --out: where should the scores go?");
    check_input_file(a.checkpoint, "--checkpoint");
    std::vector<std::string> inputs{a.checkpoint};
    if (!a.csv.empty()) inputs.push_back(a.csv);
    check_output_paths({{"--out", a.out}, {"--export", a.export_path}}, inputs);

    torch::set_num_threads(a.threads);
    TrainedModel m = load_trained_model(a.checkpoint);
    const torch::Device device = select_device(a.device, cuda_device_count());
    const int64_t batch = a.batch > 0 ? a.batch : m.eval_batch;
    const int64_t side = a.crop_size > 0 ? a.crop_size : m.transform.crop;
    TORCH_CHECK(a.crops == 1 || side > 0, "--crops ", a.crops,
                " needs a crop side: the run has no --test-crop, so give --crop-size");
    if (!a.quiet) {
      out << fmt::format(
          "ohem-score: {} model ({} width {}) from {}; test transform: short side {}, {}; "
          "{} thread(s), device {}\n",
          m.trainer, m.config.value("--arch", "?"), m.config.value("--width", int64_t{0}), a.checkpoint,
          m.transform.resize,
          m.transform.crop > 0 ? fmt::format("centre crop {}", m.transform.crop) : "whole image",
          torch::get_num_threads(), a.device);
    }

    std::string export_bytes;
    if (!a.export_path.empty()) {
      const int64_t s = m.transform.crop > 0 ? m.transform.crop : 224;
      torch::manual_seed(0);  // the example batch (its values do not enter the graph)
      const torch::jit::Module script = export_torchscript(*m.module, m.score, torch::rand({2, 3, s, s}));
      const nlohmann::json info{{"format", "ohem-export 1"},
                                {"trainer", m.trainer},
                                {"checkpoint", a.checkpoint},
                                {"input",
                                 "float [B, 3, H, W]: RGB in [0, 1], short side resized (bilinear, "
                                 "antialiased) to test_resize, centre crop test_crop (0: none), then "
                                 "normalised with mean and std per channel"},
                                {"output", "float [B]: the predicted quality (higher is better)"},
                                {"test_resize", m.transform.resize},
                                {"test_crop", m.transform.crop},
                                {"mean", {0.485, 0.456, 0.406}},
                                {"std", {0.229, 0.224, 0.225}},
                                {"config", m.config}};
      export_bytes = torchscript_bytes(script, info);
    }

    std::vector<std::pair<std::string, std::string>> files;
    if (!a.out.empty()) {
      std::vector<std::string> bad;
      const std::vector<Item> items = a.images.empty() ? list_csv(a, bad) : list_folder(a.images);
      for (const Item& item : items) {  // an output that is one of the images would overwrite it
        std::error_code ec;
        for (const auto& [what, path] :
             {std::pair<const char*, const std::string&>{"--out", a.out},
              std::pair<const char*, const std::string&>{"--export", a.export_path}})
          TORCH_CHECK(path.empty() || !std::filesystem::equivalent(item.path, path, ec), what, " \"", path,
                      "\" is one of the images to score (", item.where, ")");
      }
      m.module->to(device);
      const bool bar = a.progress == "on" || (a.progress == "auto" && ::isatty(2) != 0 && !a.quiet);
      Progress progress("scoring", static_cast<int64_t>(items.size()), bar);
      std::vector<std::pair<const Item*, double>> scores;
      std::vector<const Item*> pending;
      std::vector<torch::Tensor> inputs_batch;
      torch::NoGradGuard no_grad;
      // As the trainers' evaluation: consecutive images of one size, up to `batch` at a time.
      auto flush = [&] {
        if (inputs_batch.empty()) return;
        const torch::Tensor p = m.score(torch::stack(inputs_batch).to(device))
                                    .reshape({-1})
                                    .to(torch::kCPU, torch::kDouble)
                                    .contiguous();
        for (size_t k = 0; k < pending.size(); ++k)
          scores.emplace_back(pending[k], p[static_cast<int64_t>(k)].item<double>());
        inputs_batch.clear();
        pending.clear();
      };
      int64_t done = 0;
      for (const Item& item : items) {
        torch::Tensor img;
        try {
          img = m.transform.resized(to_float_chw(load_image(item.path, m.max_pixels)));
        } catch (const c10::Error& e) {
          TORCH_CHECK(a.skip_bad, item.where, ": ", e.what_without_backtrace(),
                      " (--skip-bad goes on without it)");
          bad.push_back(fmt::format("{}: {}", item.where, e.what_without_backtrace()));
          progress.update(++done);
          continue;
        }
        if (a.crops > 1) {
          flush();
          const auto views = crop_views(img, a.crops, side);
          std::vector<torch::Tensor> x;
          for (const auto& v : views) x.push_back(normalize_imagenet(v.contiguous()));
          const torch::Tensor p = m.score(torch::stack(x).to(device)).to(torch::kCPU, torch::kDouble);
          scores.emplace_back(&item, p.mean().item<double>());
        } else {
          const torch::Tensor x = m.transform.finish(img);
          if (!inputs_batch.empty() && (inputs_batch.front().sizes() != x.sizes() ||
                                        static_cast<int64_t>(inputs_batch.size()) >= batch))
            flush();
          inputs_batch.push_back(x);
          pending.push_back(&item);
        }
        progress.update(++done);
      }
      flush();
      progress.finish();
      std::string csv = "name,prediction\n";
      for (const auto& [item, s] : scores) csv += fmt::format("{},{}\n", ohem::csv_field(item->name), s);
      files.emplace_back(a.out, csv);
      if (!bad.empty()) {
        err << fmt::format("ohem-score: skipped {} image(s) (--skip-bad):\n", bad.size());
        for (const auto& b : bad) err << "  " << b << "\n";
      }
      TORCH_CHECK(!scores.empty(), "no image could be scored");
      if (!a.quiet) out << fmt::format("ohem-score: scored {} image(s)\n", scores.size());
    }
    if (!a.export_path.empty()) files.emplace_back(a.export_path, export_bytes);
    atomic_write_texts(files);
    if (!a.quiet)
      for (const auto& f : files) out << "ohem-score: wrote " << f.first << "\n";
    return 0;
  } catch (const c10::Error& e) {
    err << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace ohem_score
