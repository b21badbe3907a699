#pragma once
/// \file
/// The images of a gMAD pair (`Figure`, `figure_pair`): side by side, at least native size, click to
/// enlarge with a CSS-only checkbox lightbox (its CSS is in html_page.hpp's `style`). Part of html.hpp.
#include "html_text.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace ohem_examples::html {

/// One image of a gMAD pair: `src` (a data: URI or a relative URL, already encoded), `alt` text, the
/// caption (HTML), and its native size when known (0: unknown, shown as the browser finds it).
struct Figure {
  std::string src, alt, caption_html;
  int width = 0, height = 0;
};

/// The images of one gMAD pair side by side, each at `scale` times its native size when that is known
/// (an integer ≥ 1 chosen so that the short side reaches `min_side` pixels, pixelated), click to
/// enlarge to the window (CSS-only: a hidden checkbox in a label; click again to close).
inline std::string figure_pair(const std::vector<Figure>& figures, int min_side = 192) {
  std::string out = "<div class=\"pair\">\n";
  for (const auto& f : figures) {
    std::string size;
    if (f.width > 0 && f.height > 0) {
      const int scale = std::max(1, min_side / std::max(1, std::min(f.width, f.height)));
      size = fmt::format(" width=\"{}\" height=\"{}\"", f.width * scale, f.height * scale);
    }
    out += fmt::format(
        "<figure><label class=\"zoom\" title=\"click to enlarge\"><input type=\"checkbox\"><img src=\"{}\" "
        "alt=\"{}\"{}><span class=\"backdrop\"></span></label><figcaption>{}</figcaption></figure>\n",
        escape(f.src), escape(f.alt), size, f.caption_html);
  }
  return out + "</div>\n";
}

}  // namespace ohem_examples::html
