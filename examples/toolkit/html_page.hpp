#pragma once
/// \file
/// A whole self-contained HTML page (no network, no JavaScript): `page` around a body, with the CSS of
/// `style` (typography, tables and the gMAD pairs' click-to-enlarge view) and, where there are charts,
/// `chart_style`. Part of html.hpp.
#include "html_text.hpp"

#include <string>

namespace ohem_examples::html {

/// The page's CSS: typography, tables and the gMAD pairs' lightbox (charts: chart_style()).
inline std::string style() {
  return R"css(
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);margin:0;line-height:1.5}
main{max-width:1080px;margin:0 auto;padding:1.5em 2em 4em}
h1{font-size:1.9em;margin:.2em 0 .1em} h2{font-size:1.35em;margin:2.2em 0 .5em;padding-bottom:.25em;border-bottom:1px solid var(--line)}
h3{font-size:1.05em;margin:1.4em 0 .4em} .meta,.note{color:var(--muted);font-size:.92em}
.summary{background:var(--soft);border:1px solid var(--line);border-left:4px solid #4c78a8;border-radius:6px;padding:.6em 1.2em;margin:1em 0}
.summary li{margin:.25em 0}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding:.3em 0;caption-side:top}
th,td{border-bottom:1px solid var(--line);padding:.3em .7em;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600} td.num,th.num{text-align:right}
tr:hover td{background:#fbfbfc}
.good{color:#1a7f37} .bad{color:#cf222e}
.pair{display:flex;gap:1.2em;align-items:flex-start;overflow-x:auto;margin:.5em 0 1.5em;padding:.3em 0}
.pair figure{margin:0;flex:0 0 auto}
.pair figcaption{font-size:.86em;color:#333;max-width:32em}
.zoom{display:block;cursor:zoom-in}
.zoom input{display:none}
.zoom img{display:block;border:1px solid var(--line);image-rendering:pixelated}
.zoom .backdrop{display:none}
.zoom input:checked~.backdrop{display:block;position:fixed;inset:0;background:rgba(0,0,0,.88);z-index:9;cursor:zoom-out}
.zoom input:checked~img{position:fixed;inset:0;margin:auto;width:auto!important;height:auto!important;min-width:min(92vw,92vh);max-width:96vw;max-height:96vh;object-fit:contain;z-index:10;cursor:zoom-out;border:0}
.verdict-yes{color:#1a7f37;font-weight:600} .verdict-no{color:#cf222e;font-weight:600}
)css";
}

/// The CSS of the charts (bar_chart, line_chart): pass it as `extra_css` of page() where there are charts.
inline std::string chart_style() {
  return R"css(
.chart{margin:.6em 0 1.4em} .chart svg{max-width:100%;height:auto;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:.5em 1.5em}
.charts .chart{flex:0 1 480px}
svg text{fill:var(--fg)} svg .axis{stroke:#8b949e} svg .grid{stroke:#eaeef2} svg .tick{fill:var(--muted)}
)css";
}

/// A whole HTML document: `<title>`, the CSS of style() and `body` (already HTML) inside `<main>`.
inline std::string page(const std::string& title, const std::string& body,
                        const std::string& extra_css = "") {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" "
         "content=\"width=device-width,initial-scale=1\">\n<title>" +
         escape(title) + "</title>\n<style>" + style() + extra_css + "</style></head>\n<body><main>\n" +
         body + "</main></body></html>\n";
}

}  // namespace ohem_examples::html
