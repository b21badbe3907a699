#pragma once
/// @file
/// The data of `ohem-eval --gmad` (`GmadData`: the images and two models' scores, and the models' names),
/// read from one three-column file or from A.csv and B.csv joined by name.

#include "columns.hpp"
#include "join.hpp"
#include "merged_file.hpp"
#include "options.hpp"

#include <toolkit/csv.hpp>

#include <torch/torch.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace ohem_eval {

/// The data of gMAD, from one three-column file or from two files joined by name.
struct GmadData {
  std::string source;              ///< what the summary names: the file, or the two files joined
  std::vector<std::string> names;  ///< the images
  std::vector<std::string> where;  ///< "file:line" of each image's record (for --embed-images errors)
  std::vector<double> a, b;        ///< the two models' scores
  std::string label_a, label_b;    ///< the models' names
  std::string note;                ///< --partial's counts ("" when nothing was left out)
  std::vector<std::string> warnings;
};

/// Returns the --names pair, or the defaults `a`, `b` without --names; throws if the names are not two
/// different non-empty names.
inline std::pair<std::string, std::string> model_names(const Args& args, const std::string& a,
                                                       const std::string& b, const std::string& from) {
  std::pair<std::string, std::string> n{a, b};
  if (!args.names.empty()) {
    const auto v = ohem_examples::split_csv_line(args.names, "--names");
    TORCH_CHECK(v.size() == 2 && !v[0].empty() && !v[1].empty(),
                "ohem-eval: --names expects two names, A,B (e.g. --names baseline,ohem), got \"", args.names,
                "\"");
    n = {v[0], v[1]};
  }
  TORCH_CHECK(CsvFile::lower(n.first) != CsvFile::lower(n.second), from,
              ": the two models have the same name \"", n.first, "\"",
              args.names.empty() ? "; name them with --names A,B" : "");
  return n;
}

/// Reads gMAD's data from one file of three columns (`read_input`).
inline GmadData read_merged_gmad(const Args& args) {
  const Input in = read_input(args);
  const CsvFile& t = in.csv;
  GmadData d;
  d.source = args.input;
  d.warnings = in.warnings;
  const size_t cname = static_cast<size_t>(in.column.at("name"));
  for (const auto& row : t.rows) {
    d.names.push_back(row.second[cname]);
    d.where.push_back(t.where(row.first));
  }
  d.a = numbers(t, in.column.at("A"), in.label.at("A"));
  d.b = numbers(t, in.column.at("B"), in.label.at("B"));
  std::tie(d.label_a, d.label_b) = model_names(args, in.label.at("A"), in.label.at("B"), args.input + ":1");
  return d;
}

/// Reads gMAD's data from A.csv and B.csv (name and prediction each) joined by name, in the order of
/// A.csv; the models are named by the files' stems or --names.
inline GmadData read_joined_gmad(const Args& args) {
  SideSpec spec;
  spec.required = {"name", "prediction"};
  spec.expected = "name and prediction: one model's scores, as ohem-score writes them";
  namespace fs = std::filesystem;
  std::error_code ec;
  TORCH_CHECK(!(fs::equivalent(args.input, args.second, ec) && !ec), "ohem-eval: --gmad ", args.input, " ",
              args.second, ": the two files are the same file; gMAD compares two models");
  const Side a = read_side(args.input, spec, args);
  const Side b = read_side(args.second, spec, args);
  const Joined j = join_by_name(a, b, args.partial);
  TORCH_CHECK(j.rows.size() >= 2, args.input, " and ", args.second,
              ": needs at least 2 images in both files, got ", j.rows.size());
  GmadData d;
  d.source = args.input + " joined with " + args.second + " by name";
  std::tie(d.label_a, d.label_b) =
      model_names(args, fs::path(args.input).stem().string(), fs::path(args.second).stem().string(),
                  "ohem-eval: --gmad " + args.input + " " + args.second);
  const size_t an = static_cast<size_t>(a.column.at("name"));
  const size_t ap = static_cast<size_t>(a.column.at("prediction")),
               bp = static_cast<size_t>(b.column.at("prediction"));
  for (const auto& [ra, rb] : j.rows) {
    d.names.push_back(a.csv.rows[ra].second[an]);
    d.where.push_back(a.csv.where(a.csv.rows[ra].first));
    d.a.push_back(number_at(a.csv, ra, ap, a.label.at("prediction")));
    d.b.push_back(number_at(b.csv, rb, bp, b.label.at("prediction")));
  }
  d.note = partial_note(j, args.input, args.second);
  return d;
}

}  // namespace ohem_eval
