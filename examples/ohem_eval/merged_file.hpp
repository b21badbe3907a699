#pragma once
/// @file
/// Reading one merged input file of `ohem-eval` (`read_input`): name, mos, prediction and optionally
/// group for the evaluation, or a name and two models' scores for --gmad, found by header name or by
/// --columns with --no-header; repeated image names are errors unless --allow-duplicates.

#include "columns.hpp"
#include "options.hpp"

#include <toolkit/csv.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ohem_eval {

/// The input table with the columns' indices by role.
struct Input {
  CsvFile csv;
  std::map<std::string, int64_t> column;     ///< role -> index (absent if not present)
  std::map<std::string, std::string> label;  ///< role -> the header's name (or the role without one)
  std::vector<std::string> warnings;
};

/// Returns the column named by `aliases`; the error adds a hint when the file may lack a header.
inline int64_t require(const CsvFile& t, const std::vector<std::string>& aliases, const char* role,
                       const Args& args) {
  try {
    return t.require_column(aliases, role);
  } catch (const c10::Error& e) {
    // A header with a prediction column but no MOS column: most likely ohem-score's name,prediction file.
    const bool scores_only =
        std::string(role) == "mos" && !args.no_header && t.column(role_aliases("prediction")) >= 0;
    TORCH_CHECK(false, e.what_without_backtrace(),
                scores_only
                    ? std::string("; to join a name,prediction file (as ohem-score writes) with a MOS file "
                                  "by name, pass --mos MOS.csv")
                : args.no_header ? std::string()
                                 : std::string("; if the file has no header row, pass --no-header"));
  }
  return -1;
}

/// Returns `t` without its records (what the column lookups read): a copy of a million-row table costs
/// more than reading it.
inline CsvFile header_of(const CsvFile& t) {
  CsvFile h;
  h.path = t.path;
  h.header = t.header;
  h.header_positions = t.header_positions;
  return h;
}

/// Reads the input CSV and maps its columns to `roles` (by header name, or by --columns with
/// --no-header); for --gmad the two columns other than the name are the models. Throws naming the file,
/// line and column of a problem; an unknown or missing column, or a repeated image name (unless
/// --allow-duplicates), is an error.
inline Input read_input(const Args& args) {
  Input in;
  in.csv = ohem_examples::read_csv(args.input,
                                   ohem_examples::CsvOptions().header(!args.no_header).same_width(true));
  const CsvFile& t = in.csv;
  TORCH_CHECK(args.columns.empty() || args.no_header,
              "ohem-eval: --columns is for files without a header "
              "(--no-header); a header names the columns itself");
  const size_t width = args.no_header ? t.rows.front().second.size() : t.header.size();
  if (args.gmad) {
    std::vector<std::string> names =
        args.no_header
            ? ohem_examples::split_csv_line(args.columns.empty() ? "name,A,B" : args.columns, "--columns")
            : t.header;
    TORCH_CHECK(names.size() == 3 && width == 3, args.input,
                ":1:1: --gmad expects 3 columns (name and two models' ", "scores), got ", width,
                width == 2 ? "; for one name,prediction file per model, pass both: --gmad A.csv B.csv" : "");
    const CsvFile hdr = [&] {
      CsvFile h = header_of(t);
      h.header = names;
      if (h.header_positions.empty()) h.header_positions.assign(3, {1, 1});
      return h;
    }();
    const int64_t cn = require(hdr, eval_columns()[0].aliases, "name", args);
    int k = 0;
    for (int64_t c = 0; c < 3; ++c) {
      if (c == cn) continue;
      const std::string role = k++ == 0 ? "A" : "B";
      in.column[role] = c;
      in.label[role] = names[c];
    }
    in.column["name"] = cn;
    in.label["name"] = names[cn];
    TORCH_CHECK(CsvFile::lower(in.label["A"]) != CsvFile::lower(in.label["B"]), args.input,
                ":1: the two models' columns have the same name \"", in.label["A"], "\"");
  } else {
    std::vector<std::string> names;
    if (args.no_header) {
      names = ohem_examples::split_csv_line(
          args.columns.empty() ? (width == 4 ? "name,mos,prediction,group" : "name,mos,prediction")
                               : args.columns,
          "--columns");
      TORCH_CHECK(names.size() == width, args.input, ": --columns names ", names.size(),
                  " columns but the file has ", width);
    } else {
      names = t.header;
    }
    CsvFile hdr = header_of(t);
    hdr.header = names;
    if (args.no_header) hdr.header_positions.assign(names.size(), {1, 1});
    std::vector<bool> used(names.size(), false);
    for (const auto& r : eval_columns()) {
      std::vector<size_t> others;
      const int64_t c =
          r.required ? require(hdr, r.aliases, r.role, args) : group_column(hdr, args, true, others);
      for (size_t o : others) used[o] = true;
      if (c < 0) continue;
      in.column[r.role] = c;
      in.label[r.role] = names[c];
      used[c] = true;
    }
    for (size_t c = 0; c < names.size(); ++c) {
      if (used[c]) continue;
      const std::string where = args.no_header ? std::string("--columns") : t.where(static_cast<int64_t>(1));
      TORCH_CHECK(false, where, ": unknown column ", c + 1, " \"", names[c],
                  "\" (expected name, mos, prediction and optionally group; see --help for the aliases",
                  args.no_header ? "" : "; a file without a header row needs --no-header", ")");
    }
  }
  TORCH_CHECK(t.rows.size() >= 2, args.input, ": needs at least 2 images, got ", t.rows.size());
  // Repeated image names.
  const size_t cn = static_cast<size_t>(in.column.at("name"));
  const std::vector<std::string> names = image_names(t, cn);
  for (const ohem_examples::RepeatedKey& k : ohem_examples::repeated_keys(names)) {
    const std::string msg = fmt::format("{}: image \"{}\" appears again (first on line {})",
                                        t.where(k.row, cn), names[k.row], t.rows[k.first].first);
    TORCH_CHECK(args.allow_duplicates, msg, "; pass --allow-duplicates to keep every row");
    in.warnings.push_back("warning: " + msg);
  }
  return in;
}

}  // namespace ohem_eval
