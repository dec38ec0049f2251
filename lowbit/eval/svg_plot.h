// A small, dependency-free SVG chart for study results: labelled points
// (one per scheme) or lines (one per scheme across a sweep), with axes,
// ticks, a grid and a legend.
#pragma once

#include <string>
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

// The SVG document text.
std::string render_svg_plot(const PlotSpec& spec);

}  // namespace lowbit
