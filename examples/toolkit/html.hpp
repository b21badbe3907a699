#pragma once
/// \file
/// Small helpers for self-contained HTML pages (no network, no JavaScript): escaping, data: URIs,
/// inline-SVG charts (grouped bars with error bars, line charts, dot strips), tables (HTML and Markdown), and
/// the rendering of gMAD image pairs (side by side, at least native size, click to enlarge with a CSS-only
/// checkbox lightbox). Used by the study report (examples/study/report) and `ohem-eval --gmad`.
///
/// The entry header: it only includes its parts, one concept each, all in `ohem_examples::html`.
#include "html_charts.hpp"   // bar_chart, line_chart, dot_chart, palette
#include "html_embed.hpp"    // base64, read_bytes, mime_type, data_uri, png_size
#include "html_figures.hpp"  // Figure, figure_pair (gMAD image pairs)
#include "html_page.hpp"     // page, style, chart_style
#include "html_tables.hpp"   // Table, table_html, table_markdown
#include "html_text.hpp"     // escape, url_path, markdown_escape, number
