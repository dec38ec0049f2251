// A small, dependency-free SVG chart for study results: labelled points
// (one per scheme) or lines (one per scheme across a sweep), with axes,
// ticks, a grid and a legend.
//
// Point labels are laid out, not just offset: each goes where its estimated
// text box overlaps no other label, no marker, no leader line and stays
// inside the plot frame, as close to its own marker as that allows (with a
// leader line when it had to move away). The legend sits beside the frame,
// where no data can be. The layout is a pure function of the spec, so the
// same study gives the same bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // non-finite points are skipped
  bool line = false;         // connect the points; otherwise a labelled marker each
};

struct PlotSpec {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
};

// The SVG document text. Elements a reader may want to find carry a class:
// "frame" (the plot area's rect), "marker" (circle per point, with a
// <title>), "label" (a point's text), "leader" (line from a marker to its
// displaced label), "legend" (the legend's group).
std::string render_svg_plot(const PlotSpec& spec);

// --- text metrics, shared by the layout and by its tests ---------------

// The font size (px) of tick labels, point labels and the legend.
inline constexpr double kSvgFontSize = 12;

// An axis-aligned box in SVG pixels: left, top, right, bottom.
struct SvgBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool overlaps(const SvgBox& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  bool inside(const SvgBox& o) const { return x0 >= o.x0 && y0 >= o.y0 && x1 <= o.x1 && y1 <= o.y1; }
};

// Estimated advance width of `text` (UTF-8) at `font_size` px. The SVG
// names DejaVu Sans first, and these are its advances (measured through
// librsvg); any other code point counts as a full em, more than most glyphs
// take, so the estimate errs wide.
double svg_text_width(std::string_view text, double font_size);

// The box the glyphs of a <text> element occupy: x and the baseline as in
// the element, anchor "start", "middle" or "end". It covers ascenders,
// descenders and anti-aliasing fringes.
SvgBox svg_text_box(double x, double baseline, std::string_view anchor, std::string_view text, double font_size);

}  // namespace lowbit
