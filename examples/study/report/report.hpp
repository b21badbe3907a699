#pragma once
/// \file
/// The study report (issue 14): reads the `study` program's results.json (schema "ohem-study/1", see
/// docs/study.md) and writes report.html (self-contained: inline SVG charts, the gMAD images as data:
/// URIs, a little inline CSS, no JavaScript, no network) and report.md (the same tables in Markdown).
/// Needs only nlohmann/json, fmt and the standard library (no LibTorch).
///
/// The report is a list of sections (the title, the plain-words summary, the comparison, the training
/// curves, the mechanism, gMAD, the run), each one function from the results to its HTML and Markdown
/// (report_detail::sections lists them). The input check is validate.hpp's, one function per part of
/// results.json (validate_results lists them). A new section is one more function in each list.
///
/// Study v2's results.json (schema "ohem-study/2", `study --design v2`) has its own sections
/// (report_detail::v2_sections): the registered endpoints first (the primary's line "Δ = …, 95 %
/// t-interval […], sign-flip p = …, n = … seeds", its reading by the registered rule, the minimum
/// detectable effect, the secondaries), then the per-type rows with Holm-adjusted p-values, the
/// mechanism, the per-seed tables and the run.
///
/// The parts, one concept a file: validate.hpp (the input check), json_access.hpp (how the sections read
/// results.json), text.hpp (words and numbers as text), study_view.hpp (what v1's sections share),
/// sections_*.hpp (v1's sections), v2_rule.hpp and sections_v2.hpp (study v2's), render.hpp (the pages)
/// and write.hpp (the files).
#include "render.hpp"
#include "validate.hpp"
#include "write.hpp"
