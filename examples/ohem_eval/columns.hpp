#pragma once
/// @file
/// The columns of `ohem-eval`'s input files: the roles (name, mos, prediction, group) and the header names
/// that select them, the group column (--group), and reading a column's numbers and image names with
/// errors that name the file, line, column and header. See docs/metrics.md, "Input".

#include "options.hpp"

#include <toolkit/csv.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ohem_eval {

using ohem_examples::CsvFile;

/// A column role of the evaluation input and the header names (case-insensitive) that select it.
struct ColumnRole {
  const char* role;
  std::vector<std::string> aliases;
  bool required;
};

/// The columns `ohem-eval` reads (docs/metrics.md, "Input").
inline const std::vector<ColumnRole>& eval_columns() {
  static const std::vector<ColumnRole> roles{
      {"name",
       {"name", "image", "image_name", "image name", "img", "file", "filename", "path", "dist_img"},
       true},
      {"mos", {"mos", "score", "dmos", "label", "subjective", "gt", "ground_truth"}, true},
      {"prediction", {"prediction", "pred", "predicted", "predictions", "output", "y_pred"}, true},
      {"group", {"group", "type", "distortion", "distortion_type", "category"}, false}};
  return roles;
}

/// Returns the header names (aliases) of column role `role` (see `eval_columns`).
inline const std::vector<std::string>& role_aliases(const std::string& role) {
  for (const auto& r : eval_columns()) {
    if (role == r.role) return r.aliases;
  }
  TORCH_INTERNAL_ASSERT(false, "no column role ", role);
  return eval_columns().front().aliases;
}

/// Parses field `c` of record `r` as a finite number; throws naming file, line, column and header.
inline double number_at(const CsvFile& t, size_t r, size_t c, const std::string& column) {
  const std::string& f = t.rows[r].second[c];
  double x = 0.0;
  TORCH_CHECK(ohem_examples::parse_decimal(f, x), t.where(r, c), ": column ", c + 1, " (\"", column,
              "\"): expected a finite number, got \"", f, "\"");
  return x;
}

/// Returns the numbers of column `c` (see `number_at`).
inline std::vector<double> numbers(const CsvFile& t, size_t c, const std::string& column) {
  std::vector<double> out(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) out[r] = number_at(t, r, c, column);
  return out;
}

/// Returns the group column of `t`'s header (or --columns' names): the column --group names, else the one
/// the group aliases find; -1 if there is none or --group is "none". Adds the other columns the aliases
/// match to `others` (--group chose among them: they are ignored). Throws if the aliases match several
/// columns and --group does not choose, or if --group names a column `t` lacks and `need` is set.
inline int64_t group_column(const CsvFile& t, const Args& args, bool need, std::vector<size_t>& others) {
  // A copy: GCC 14 (-Wdangling-reference) takes a reference bound here for one to the temporary argument.
  const std::vector<std::string> aliases = role_aliases("group");
  if (args.group.empty()) {
    try {
      return t.column(aliases);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, e.what_without_backtrace(), "; choose one with --group NAME (or --group none)");
    }
  }
  const bool none = CsvFile::lower(args.group) == "none";
  const int64_t c = none ? -1 : t.column(std::vector<std::string>{args.group});
  TORCH_CHECK(c >= 0 || none || !need, t.where(t.header_positions.empty() ? 1 : t.header_positions[0].line),
              ": --group \"", args.group, "\": no such column in the header");
  for (size_t i = 0; i < t.header.size(); ++i) {
    const std::string h = CsvFile::lower(t.header[i]);
    const bool alias = std::any_of(aliases.begin(), aliases.end(),
                                   [&](const std::string& a) { return CsvFile::lower(a) == h; });
    if (alias && static_cast<int64_t>(i) != c) others.push_back(i);
  }
  return c;
}

/// Returns field `cn` of every record (the image names); throws naming the file, line and column of an
/// empty one.
inline std::vector<std::string> image_names(const CsvFile& t, size_t cn) {
  std::vector<std::string> names(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    names[r] = t.rows[r].second[cn];
    TORCH_CHECK(!ohem_examples::trim(names[r]).empty(), t.where(r, cn), ": empty image name");
  }
  return names;
}

}  // namespace ohem_eval
