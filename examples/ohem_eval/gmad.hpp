#pragma once
/// @file
/// The gMAD mode of `ohem-eval` (`gmad_file`): gMAD with either model defending, the summary printed to
/// stdout, and the selected pairs written as CSV and as a self-contained HTML page (images linked, or
/// embedded with --embed-images from under --image-root only). See docs/gmad.md.

#include "gmad_data.hpp"
#include "options.hpp"

#include <toolkit/files.hpp>
#include <toolkit/html.hpp>

#include <ohem/csv.hpp>
#include <ohem/gmad.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ios>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace ohem_eval {

/// One CSV field, quoted where it must be: the library's writer (every CSV ohem writes uses it).
using ohem::csv_field;

/// The file `--embed-images` may read for image `name` (of the input at `where`, "file:line"): the name
/// resolved under `--image-root` with every symbolic link followed, which must stay inside the resolved
/// root and be a regular file named as a raster image (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, .tiff).
/// Throws naming the row, the name and the reason otherwise: a page must not carry a file the CSV merely
/// names (`/etc/passwd`, `../x`).
inline std::filesystem::path embeddable_image(const Args& args, const std::string& name,
                                              const std::string& where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::canonical(args.image_root.empty() ? "." : args.image_root, ec);
  TORCH_CHECK(!ec && fs::is_directory(root), "ohem-eval: --image-root \"", args.image_root,
              "\" is not a directory", ec ? ": " + ec.message() : std::string());
  const fs::path named(name);
  TORCH_CHECK(!named.is_absolute(), where, ": --embed-images: image \"", name,
              "\" is an absolute path; names must be relative to --image-root \"", args.image_root, "\"");
  const fs::path file = fs::canonical(root / named, ec);
  TORCH_CHECK(!ec, where, ": --embed-images: image \"", name, "\" not found under --image-root \"",
              args.image_root, "\": ", ec.message());
  const bool inside = std::mismatch(root.begin(), root.end(), file.begin(), file.end()).first == root.end();
  TORCH_CHECK(inside, where, ": --embed-images: image \"", name, "\" resolves to \"", file.string(),
              "\", outside --image-root \"", root.string(), "\"; refusing to embed it");
  const std::string mime = ohem_examples::html::mime_type(file);
  TORCH_CHECK(fs::is_regular_file(file, ec) && mime.rfind("image/", 0) == 0 && mime != "image/svg+xml", where,
              ": --embed-images: \"", name,
              "\" is not an image file (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, "
              ".tiff); refusing to embed it");
  return file;
}

/// The gMAD mode: returns the summary printed to stdout and writes the pairs' CSV and HTML page.
inline std::string gmad_file(const Args& args, std::string& err) {
  const bool join = !args.second.empty();
  // Two files: A_vs_B beside A.csv.
  const std::string base =
      join ? stem(args.input) + "_vs_" + std::filesystem::path(args.second).stem().string()
           : stem(args.input);
  const std::string pairs_path = args.pairs.empty() ? base + ".gmad.csv" : args.pairs;
  const std::string html_path = args.html.empty() ? base + ".gmad.html" : args.html;
  ohem_examples::check_input_file(args.input, "input CSV");
  if (join) ohem_examples::check_input_file(args.second, "input CSV");
  ohem_examples::check_output_paths(
      {{"--pairs", pairs_path}, {"--html", html_path}},
      join ? std::vector<std::string>{args.input, args.second} : std::vector<std::string>{args.input});
  const GmadData data = join ? read_joined_gmad(args) : read_merged_gmad(args);
  for (const auto& w : data.warnings) err += w + "\n";
  const auto& a = data.a;
  const auto& b = data.b;
  const std::string na = data.label_a, nb = data.label_b;
  const size_t n = data.names.size();
  ohem::GmadCompetition comp;
  try {
    comp = ohem::gmad_competition(a, b, ohem::GmadOptions().levels(args.levels).window(args.window));
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, data.source, ": ", e.what_without_backtrace());
  }
  auto name = [&](int64_t i) { return data.names[static_cast<size_t>(i)]; };
  // One image of a pair: embedded (data: URI) or linked, at its native size when it is a readable PNG.
  auto figure = [&](int64_t i, const std::string& caption) {
    const std::string root = args.image_root;
    const std::string p =
        root.empty() || root == "." ? name(i) : root + (root.back() == '/' ? "" : "/") + name(i);
    namespace html = ohem_examples::html;
    html::Figure f{args.embed_images
                       ? html::data_uri(embeddable_image(args, name(i), data.where[static_cast<size_t>(i)]),
                                        "image (for --embed-images)")
                       : html::url_path(p),
                   name(i), caption};
    std::ifstream in(p, std::ios::binary);
    std::string head(24, '\0');
    if (in.read(head.data(), 24)) {
      if (const auto size = html::png_size(head)) std::tie(f.width, f.height) = *size;
    }
    return f;
  };
  using ohem_examples::html::escape;

  std::string csv =
      "defender,attacker,level,center,lower,upper,count,image_high,image_low,defender_high,defender_low,"
      "attacker_high,attacker_low,gap,normalized_gap\n";
  std::string summary =
      fmt::format("{}: {} images, {} levels, window {}\n", data.source, n, args.levels, args.window);
  if (!data.note.empty()) summary += data.note + "\n";
  std::string html = fmt::format(
      "<h1>gMAD: {0} vs {1}</h1>\n<p class=\"meta\">{2}: {3} images, {4} levels, window {5} of a level. In "
      "each level the defender rates both images alike; the attacker rates the left one best and the right "
      "one worst. Images at native size (small ones enlarged by a whole factor); click one to enlarge it, "
      "click again to close.</p>\n",
      escape(na), escape(nb), escape(data.source), n, args.levels, args.window);
  if (!data.note.empty()) html += "<p class=\"meta\">" + escape(data.note) + "</p>\n";
  for (const auto& [defender, attacker, result] :
       {std::tuple<std::string, std::string, const ohem::GmadResult*>{na, nb, &comp.a_defends},
        std::tuple<std::string, std::string, const ohem::GmadResult*>{nb, na, &comp.b_defends}}) {
    summary += fmt::format("{} defends, {} attacks: mean normalized gap {:.4f}\n", defender, attacker,
                           result->mean_normalized_gap());
    html += fmt::format("<h2>{} defends, {} attacks (mean normalized gap {:.4f})</h2>\n", escape(defender),
                        escape(attacker), result->mean_normalized_gap());
    for (const auto& p : result->pairs) {
      if (!p.found()) {
        summary += fmt::format("  level {}: {} image(s) in [{:.4g}, {:.4g}], no pair\n", p.level, p.count,
                               p.lower, p.upper);
        html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}]): {} image(s), no pair</h3>\n", p.level,
                            escape(defender), p.lower, p.upper, p.count);
        continue;
      }
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(defender),
                         csv_field(attacker), p.level, p.center, p.lower, p.upper, p.count,
                         csv_field(name(p.high)), csv_field(name(p.low)), p.defender_high, p.defender_low,
                         p.attacker_high, p.attacker_low, p.gap, p.normalized_gap);
      summary += fmt::format("  level {}: {} images, {} vs {}, gap {:.4g} ({:.4f})\n", p.level, p.count,
                             name(p.high), name(p.low), p.gap, p.normalized_gap);
      html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}], {} images): gap {:.4g} ({:.4f})</h3>\n",
                          p.level, escape(defender), p.lower, p.upper, p.count, p.gap, p.normalized_gap);
      std::vector<ohem_examples::html::Figure> figures;
      for (auto [i, d, sc] : {std::tuple<int64_t, double, double>{p.high, p.defender_high, p.attacker_high},
                              std::tuple<int64_t, double, double>{p.low, p.defender_low, p.attacker_low}}) {
        figures.push_back(figure(i, fmt::format("{}<br>{}: {:.4g} &middot; {}: {:.4g}", escape(name(i)),
                                                escape(defender), d, escape(attacker), sc)));
      }
      html += ohem_examples::html::figure_pair(figures);
    }
  }
  html = ohem_examples::html::page(fmt::format("gMAD: {} vs {}", na, nb), html);
  // Both files or neither: written to temporaries first, renamed when both are complete.
  ohem_examples::atomic_write_texts({{pairs_path, csv}, {html_path, html}});
  summary += fmt::format("wrote {} and {}\n", pairs_path, html_path);
  return summary;
}

}  // namespace ohem_eval
