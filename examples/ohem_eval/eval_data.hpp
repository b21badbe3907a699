#pragma once
/// @file
/// The data of `ohem-eval`'s evaluation (`EvalData`: MOS, predictions and groups), read from one merged
/// file or from SCORES.csv joined with --mos MOS.csv by name.

#include "columns.hpp"
#include "join.hpp"
#include "merged_file.hpp"
#include "options.hpp"

#include <toolkit/csv.hpp>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace ohem_eval {

/// The data of the evaluation, from one merged file or from a join.
struct EvalData {
  std::string source;  ///< what the first line of the table names: the file, or the two files joined
  std::vector<double> mos, pred;
  std::vector<std::string> groups;           ///< one per image; empty without a group column
  std::map<std::string, std::string> label;  ///< role -> the header's name
  std::vector<std::string> notes;            ///< printed below the first line (--partial's counts)
  std::vector<std::string> warnings;         ///< printed to stderr
  nlohmann::json join;                       ///< the join, for the JSON report (null for one file)
};

/// Reads the evaluation's data from one merged file (`read_input`).
inline EvalData read_merged_eval(const Args& args) {
  const Input in = read_input(args);
  const CsvFile& t = in.csv;
  EvalData d;
  d.source = args.input;
  d.label = in.label;
  d.warnings = in.warnings;
  d.mos = numbers(t, in.column.at("mos"), in.label.at("mos"));
  d.pred = numbers(t, in.column.at("prediction"), in.label.at("prediction"));
  if (in.column.count("group")) {
    const size_t cg = static_cast<size_t>(in.column.at("group"));
    for (const auto& row : t.rows) d.groups.push_back(row.second[cg]);
  }
  return d;
}

/// Reads the evaluation's data from SCORES.csv (name, prediction, optionally group) joined by name with
/// --mos MOS.csv (name, mos, optionally group; other columns ignored), in the order of SCORES.csv.
inline EvalData read_joined_eval(const Args& args) {
  SideSpec scores_spec;
  scores_spec.required = {"name", "prediction"};
  scores_spec.group = true;
  scores_spec.refused["mos"] =
      "ambiguous with --mos " + args.mos +
      " (which MOS to use?); drop the column, or evaluate the file alone without --mos";
  scores_spec.expected = "name, prediction and optionally group, with --mos";
  SideSpec mos_spec;
  mos_spec.required = {"name", "mos"};
  mos_spec.group = true;
  mos_spec.refused["prediction"] =
      "ambiguous with the predictions of " + args.input + " (which to evaluate?); drop the column";
  mos_spec.ignore_others = true;
  const Side s = read_side(args.input, scores_spec, args);
  const Side m = read_side(args.mos, mos_spec, args);
  TORCH_CHECK(args.group.empty() || CsvFile::lower(args.group) == "none" || s.column.count("group") ||
                  m.column.count("group"),
              "ohem-eval: --group \"", args.group, "\": no such column in ", args.input, " or ", args.mos);
  if (s.column.count("group") && m.column.count("group")) {
    const auto& p = m.csv.header_positions[static_cast<size_t>(m.column.at("group"))];
    TORCH_CHECK(false, args.mos, ":", p.line, ":", p.column, ": column \"", m.label.at("group"),
                "\" is a group column, and so is \"", s.label.at("group"), "\" of ", args.input,
                ": ambiguous (which groups to use?); keep one of them");
  }
  const Joined j = join_by_name(s, m, args.partial);
  TORCH_CHECK(j.rows.size() >= 2, args.input, " and ", args.mos,
              ": needs at least 2 images in both files, got ", j.rows.size());
  EvalData d;
  d.source = args.input + " joined with " + args.mos + " by name";
  d.label = {
      {"name", s.label.at("name")}, {"prediction", s.label.at("prediction")}, {"mos", m.label.at("mos")}};
  const Side* g = s.column.count("group") ? &s : m.column.count("group") ? &m : nullptr;
  if (g) d.label["group"] = g->label.at("group");
  const size_t cp = static_cast<size_t>(s.column.at("prediction")),
               cm = static_cast<size_t>(m.column.at("mos"));
  for (const auto& [rs, rm] : j.rows) {
    d.pred.push_back(number_at(s.csv, rs, cp, d.label.at("prediction")));
    d.mos.push_back(number_at(m.csv, rm, cm, d.label.at("mos")));
    if (g)
      d.groups.push_back(g->csv.rows[g == &s ? rs : rm].second[static_cast<size_t>(g->column.at("group"))]);
  }
  const std::string note = partial_note(j, args.input, args.mos);
  if (!note.empty()) d.notes.push_back(note);
  d.join = {{"by", "name"},
            {"partial", args.partial},
            {"images", j.rows.size()},
            {"scores", {{"file", args.input}, {"rows", j.first_rows}, {"left_out", j.first_left_out}}},
            {"mos", {{"file", args.mos}, {"rows", j.second_rows}, {"left_out", j.second_left_out}}}};
  return d;
}

}  // namespace ohem_eval
