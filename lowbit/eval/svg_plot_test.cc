// The chart's label layout, checked from the SVG text alone: every point
// label's box (from the same width estimate the renderer uses) must lie
// inside the frame and clear of the other labels, every marker, the legend
// and the leader lines of other labels. The real renderer's view of the same
// boxes is checked in tests/python/test_plots_and_bench.py with rsvg-convert.
#include "lowbit/eval/svg_plot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace lowbit {
namespace {

// ------------------------------------------------------- a minimal SVG reader

std::string unescape(std::string s) {
  const std::pair<const char*, const char*> ents[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}};
  for (const auto& [from, to] : ents) {
    for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, std::string(from).size(), to);
  }
  return s;
}

std::string attr(const std::string& tag, const std::string& name) {
  const std::string key = " " + name + "=\"";
  const size_t p = tag.find(key);
  if (p == std::string::npos) return "";
  const size_t b = p + key.size();
  return tag.substr(b, tag.find('"', b) - b);
}

double num_attr(const std::string& tag, const std::string& name) {
  const std::string v = attr(tag, name);
  EXPECT_FALSE(v.empty()) << "no " << name << " in " << tag;
  return v.empty() ? NAN : std::stod(v);
}

struct Element {
  std::string tag;   // the start tag, "<text ...>"
  std::string body;  // up to the matching close tag (text and <title>)
  bool in_legend = false;
};

// Every element of the given name, in document order.
std::vector<Element> elements(const std::string& svg, const std::string& name) {
  std::vector<Element> out;
  const size_t legend_at = svg.find("<g class=\"legend\">");
  const size_t legend_end = svg.find("</g>", legend_at);
  for (size_t p = 0; (p = svg.find("<" + name + " ", p)) != std::string::npos;) {
    Element e;
    const size_t e_end = svg.find('>', p);
    e.tag = svg.substr(p, e_end + 1 - p);
    if (e.tag[e.tag.size() - 2] != '/') {
      const size_t close = svg.find("</" + name + ">", e_end);
      e.body = svg.substr(e_end + 1, close - e_end - 1);
    }
    e.in_legend = legend_at != std::string::npos && p > legend_at && p < legend_end;
    out.push_back(e);
    p = e_end;
  }
  return out;
}

struct Label {
  std::string text;
  SvgBox box;
};
struct Circle {
  std::string series;
  double cx, cy, r;
};
struct Leader {
  double x0, y0, x1, y1;
  std::string color;
};

struct Chart {
  double width = 0, height = 0;
  SvgBox frame;
  std::vector<Label> labels;
  std::vector<std::string> label_colors;
  std::vector<Circle> markers;
  std::vector<std::string> marker_colors;
  std::vector<Leader> leaders;
  std::vector<SvgBox> legend;  // swatches and names
  std::vector<SvgBox> other_text;  // title, ticks, axis titles
};

SvgBox text_box(const Element& t) {
  const std::string anchor = attr(t.tag, "text-anchor");
  const double fs = attr(t.tag, "font-size").empty() ? kSvgFontSize : num_attr(t.tag, "font-size");
  return svg_text_box(num_attr(t.tag, "x"), num_attr(t.tag, "y"), anchor.empty() ? "start" : anchor,
                      unescape(t.body), fs);
}

Chart parse(const std::string& svg) {
  Chart c;
  const auto roots = elements(svg, "svg");
  EXPECT_EQ(roots.size(), 1u);
  if (roots.empty()) return c;
  c.width = num_attr(roots[0].tag, "width");
  c.height = num_attr(roots[0].tag, "height");
  for (const auto& r : elements(svg, "rect")) {
    if (attr(r.tag, "class") == "frame") {
      const double x = num_attr(r.tag, "x"), y = num_attr(r.tag, "y");
      c.frame = {x, y, x + num_attr(r.tag, "width"), y + num_attr(r.tag, "height")};
    } else if (r.in_legend) {
      const double x = num_attr(r.tag, "x"), y = num_attr(r.tag, "y");
      c.legend.push_back({x, y, x + num_attr(r.tag, "width"), y + num_attr(r.tag, "height")});
    }
  }
  for (const auto& t : elements(svg, "text")) {
    if (attr(t.tag, "class") == "label") {
      c.labels.push_back({unescape(t.body), text_box(t)});
      c.label_colors.push_back(attr(t.tag, "fill"));
    } else if (t.in_legend) {
      c.legend.push_back(text_box(t));
    } else if (attr(t.tag, "transform").empty()) {
      c.other_text.push_back(text_box(t));
    }
  }
  for (const auto& m : elements(svg, "circle")) {
    const size_t title = m.body.find("<title>");
    const std::string t = unescape(m.body.substr(title + 7, m.body.find("</title>") - title - 7));
    c.markers.push_back({t.substr(0, t.rfind(": (")), num_attr(m.tag, "cx"), num_attr(m.tag, "cy"),
                         num_attr(m.tag, "r")});
    c.marker_colors.push_back(attr(m.tag, "fill"));
  }
  for (const auto& l : elements(svg, "line")) {
    const double x1 = num_attr(l.tag, "x1"), y1 = num_attr(l.tag, "y1");
    const double x2 = num_attr(l.tag, "x2"), y2 = num_attr(l.tag, "y2");
    if (attr(l.tag, "class") == "leader") {
      c.leaders.push_back({x1, y1, x2, y2, attr(l.tag, "stroke")});
    } else if (l.in_legend) {
      c.legend.push_back({std::min(x1, x2), std::min(y1, y2) - 1, std::max(x1, x2), std::max(y1, y2) + 1});
    }
  }
  return c;
}

double dist_to_box(double x, double y, const SvgBox& b) {
  return std::hypot(std::max({b.x0 - x, 0.0, x - b.x1}), std::max({b.y0 - y, 0.0, y - b.y1}));
}

// Does segment (a, b) pass through the box? Sampled finely: the boxes here
// are at least 10 px tall and the test wants a yes/no, not an exact clip.
bool segment_hits(double x0, double y0, double x1, double y1, const SvgBox& b) {
  const int n = 400;
  for (int i = 0; i <= n; ++i) {
    const double t = static_cast<double>(i) / n;
    const double x = x0 + t * (x1 - x0), y = y0 + t * (y1 - y0);
    if (x > b.x0 && x < b.x1 && y > b.y0 && y < b.y1) return true;
  }
  return false;
}

std::string str(const SvgBox& b) {
  return "[" + std::to_string(b.x0) + ", " + std::to_string(b.y0) + " .. " + std::to_string(b.x1) + ", " +
         std::to_string(b.y1) + "]";
}

// Every way a label layout can be wrong; empty when it is right.
std::vector<std::string> layout_problems(const Chart& c) {
  std::vector<std::string> bad;
  const SvgBox canvas{0, 0, c.width, c.height};
  for (size_t i = 0; i < c.labels.size(); ++i) {
    const Label& a = c.labels[i];
    if (!a.box.inside(c.frame) || a.box.x0 < c.frame.x0 + 1 || a.box.x1 > c.frame.x1 - 1 ||
        a.box.y0 < c.frame.y0 + 1 || a.box.y1 > c.frame.y1 - 1) {
      bad.push_back("label '" + a.text + "' " + str(a.box) + " is not inside the frame " + str(c.frame));
    }
    for (size_t j = i + 1; j < c.labels.size(); ++j) {
      if (a.box.overlaps(c.labels[j].box)) {
        bad.push_back("labels '" + a.text + "' and '" + c.labels[j].text + "' overlap");
      }
    }
    for (const Circle& m : c.markers) {
      if (dist_to_box(m.cx, m.cy, a.box) < m.r) {
        bad.push_back("label '" + a.text + "' covers the marker of " + m.series);
      }
    }
    for (const SvgBox& l : c.legend) {
      if (a.box.overlaps(l)) bad.push_back("label '" + a.text + "' overlaps the legend");
    }
    for (const SvgBox& t : c.other_text) {
      if (a.box.overlaps(t)) bad.push_back("label '" + a.text + "' overlaps a tick label or title");
    }
    for (const Leader& l : c.leaders) {
      // A label's own leader ends at its box; anyone else's must not touch it.
      const bool own = dist_to_box(l.x1, l.y1, a.box) < 1.5 && l.color == c.label_colors[i];
      if (!own && segment_hits(l.x0, l.y0, l.x1, l.y1, a.box)) {
        bad.push_back("a leader runs through label '" + a.text + "'");
      }
    }
  }
  for (const SvgBox& l : c.legend) {
    if (l.overlaps(c.frame)) bad.push_back("the legend " + str(l) + " overlaps the frame " + str(c.frame));
    if (!l.inside(canvas)) bad.push_back("the legend " + str(l) + " runs off the canvas");
  }
  for (const Circle& m : c.markers) {
    // Markers sit inside the frame, not on it: the data range is padded.
    if (m.cx - m.r <= c.frame.x0 || m.cx + m.r >= c.frame.x1 || m.cy - m.r <= c.frame.y0 || m.cy + m.r >= c.frame.y1) {
      bad.push_back("marker of " + m.series + " touches the frame");
    }
  }
  return bad;
}

// Each point label is there once, next to its own marker or tied to it by a
// leader line in its colour.
void expect_every_point_labelled(const Chart& c, const PlotSpec& spec) {
  size_t points = 0;
  for (const auto& s : spec.series) points += s.line ? 0 : s.x.size();
  ASSERT_EQ(c.labels.size(), points);
  for (size_t i = 0; i < c.labels.size(); ++i) {
    const Label& a = c.labels[i];
    double nearest = INFINITY;
    for (const Circle& m : c.markers) {
      if (m.series == a.text) nearest = std::min(nearest, dist_to_box(m.cx, m.cy, a.box));
    }
    if (nearest <= 12) continue;  // adjacent
    bool tied = false;
    for (const Leader& l : c.leaders) {
      if (l.color != c.label_colors[i] || dist_to_box(l.x1, l.y1, a.box) > 1.5) continue;
      for (const Circle& m : c.markers) {
        tied = tied || (m.series == a.text && std::fabs(std::hypot(l.x0 - m.cx, l.y0 - m.cy) - (m.r + 1)) < 0.1);
      }
    }
    EXPECT_TRUE(tied) << "label '" << a.text << "' sits " << nearest << " px from its marker with no leader line";
  }
}

PlotSpec points(const std::vector<std::tuple<std::string, double, double>>& pts) {
  PlotSpec p;
  p.title = "QSNR vs bits per element";
  p.x_label = "bits per element";
  p.y_label = "QSNR (dB)";
  for (const auto& [label, x, y] : pts) {
    PlotSeries s;
    s.label = label;
    s.x = {x};
    s.y = {y};
    p.series.push_back(s);
  }
  return p;
}

void expect_clean_layout(const PlotSpec& spec) {
  const std::string svg = render_svg_plot(spec);
  const Chart c = parse(svg);
  for (const std::string& p : layout_problems(c)) ADD_FAILURE() << p;
  expect_every_point_labelled(c, spec);
  EXPECT_EQ(svg, render_svg_plot(spec)) << "the layout is not deterministic";
}

// ------------------------------------------------------------------- tests

TEST(SvgPlot, TextWidthIsDejaVuSansAdvances) {
  // DejaVu Sans digits are 1303/2048 em wide, "i" 569/2048: the table holds
  // librsvg's measurements, to within 0.5% and never narrower than the font.
  const double digits = svg_text_width("0123456789", 12), font = 10 * 1303.0 / 2048 * 12;
  EXPECT_GE(digits, font);
  EXPECT_LE(digits, font * 1.005);
  EXPECT_NEAR(svg_text_width("iiii", 2048), 4 * 569, 4 * 569 * 0.005);
  EXPECT_EQ(svg_text_width("", 12), 0);
  // A non-ASCII code point counts as one em however many bytes it has.
  EXPECT_DOUBLE_EQ(svg_text_width("\xc3\xa9", 10), 10);
  EXPECT_DOUBLE_EQ(svg_text_width("\xe2\x82\xac", 10), 10);
  // Anchors move the box, not its size.
  const SvgBox s = svg_text_box(100, 50, "start", "mxfp4", 12), m = svg_text_box(100, 50, "middle", "mxfp4", 12),
               e = svg_text_box(100, 50, "end", "mxfp4", 12);
  EXPECT_NEAR(s.x1 - s.x0, m.x1 - m.x0, 1e-9);
  EXPECT_NEAR(m.x0 - e.x0, s.x0 - m.x0, 1e-9);
  EXPECT_LT(s.y0, 50 - 0.8 * 12);  // ascenders
  EXPECT_GT(s.y1, 50 + 0.2 * 12);  // descenders
}

TEST(SvgPlot, CheckerCatchesABadLayout) {
  // The checks above must be able to fail: two labels on top of each other,
  // one over the frame's edge, one over a marker.
  const std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800.00\" height=\"500.00\">\n"
      "<rect class=\"frame\" x=\"70.00\" y=\"40.00\" width=\"540.00\" height=\"420.00\"/>\n"
      "<circle class=\"marker\" cx=\"200.00\" cy=\"200.00\" r=\"4.00\" fill=\"#1f77b4\">"
      "<title>a: (1, 2.00)</title></circle>\n"
      "<text class=\"label\" x=\"300.00\" y=\"100.00\" fill=\"#1f77b4\">mxfp4</text>\n"
      "<text class=\"label\" x=\"310.00\" y=\"104.00\" fill=\"#1f77b4\">nvfp4</text>\n"
      "<text class=\"label\" x=\"590.00\" y=\"300.00\" fill=\"#1f77b4\">int4/g128/asym</text>\n"
      "<text class=\"label\" x=\"195.00\" y=\"205.00\" fill=\"#1f77b4\">q4_0</text>\n"
      "<g class=\"legend\">\n<text x=\"600.00\" y=\"60.00\">mxfp4</text>\n</g>\n</svg>\n";
  const auto bad = layout_problems(parse(svg));
  const auto has = [&](const std::string& words) {
    for (const auto& b : bad) {
      if (b.find(words) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("labels 'mxfp4' and 'nvfp4' overlap"));
  EXPECT_TRUE(has("label 'int4/g128/asym'")) << "not caught outside the frame";
  EXPECT_TRUE(has("label 'q4_0' covers the marker of a"));
  EXPECT_TRUE(has("the legend"));
}

TEST(SvgPlot, ReadmeExampleLabelsAreClear) {
  // `lowbit study qsnr --dist student-t:5 --n 4194304 --seed 1 --schemes
  // mxfp4,nvfp4,mxint4,int4/g128/asym,mxfp8_e4m3,mxint8,q4_0,int4/g32/scale=mse`:
  // six 4-bit schemes within 0.35 bits and 5 dB of each other.
  expect_clean_layout(points({{"mxfp4", 4.25, 17.97},
                              {"nvfp4", 4.5, 20.69},
                              {"mxint4", 4.25, 15.93},
                              {"int4/g128/asym", 4.15625, 17.49},
                              {"mxfp8_e4m3", 8.25, 30.02},
                              {"mxint8", 8.25, 39.98},
                              {"q4_0", 4.5, 19.35},
                              {"int4/g32/scale=mse", 4.5, 19.17}}));
}

TEST(SvgPlot, TwelveNearIdenticalPointsGetClearLabels) {
  // Twelve schemes within 0.01 bits and 0.1 dB (a cluster a few pixels
  // wide), and two far points that stretch the axes so the cluster is tight.
  std::vector<std::tuple<std::string, double, double>> pts;
  const char* names[] = {"mxfp4",          "nvfp4", "mxint4", "int4/g128/asym", "q4_0",          "int4/g32/scale=mse",
                         "nvfp4/b16x16",   "q4_k",  "nf4/g64", "e2m1/g16/sf=ue4m3/scale=mse", "int4/g64", "mxfp4/sr"};
  for (int i = 0; i < 12; ++i) pts.emplace_back(names[i], 4.25 + 0.001 * (i % 5), 18.0 + 0.01 * i);
  pts.emplace_back("mxint8", 8.25, 40.0);
  pts.emplace_back("int2", 2.0, 5.0);
  expect_clean_layout(points(pts));
}

TEST(SvgPlot, IdenticalPointsAndCornerPoints) {
  // Ten markers drawn on one spot, and points in all four corners of the
  // data range, where a label beside the marker would leave the frame.
  std::vector<std::tuple<std::string, double, double>> pts;
  for (int i = 0; i < 10; ++i) pts.emplace_back("scheme_" + std::to_string(i), 6, 20);
  pts.emplace_back("top right, a long label that needs room", 9, 40);
  pts.emplace_back("top left <&>", 3, 40);
  pts.emplace_back("bottom right", 9, 0);
  pts.emplace_back("bottom left", 3, 0);
  expect_clean_layout(points(pts));
}

TEST(SvgPlot, ManyLabelsStillFit) {
  // More labels than fit beside one spot: the frame grows rather than lose
  // or overlap any.
  std::vector<std::tuple<std::string, double, double>> pts;
  for (int i = 0; i < 30; ++i) pts.emplace_back("int" + std::to_string(i) + "/g128/asym", 4 + 0.0001 * i, 18);
  expect_clean_layout(points(pts));
}

TEST(SvgPlot, SinglePointAndEmptyPlot) {
  expect_clean_layout(points({{"mxfp4", 4.25, 17.97}}));
  expect_clean_layout(points({}));
  // Non-finite points are skipped, not drawn at a bogus place.
  PlotSpec p = points({{"a", 1, 2}, {"b", NAN, 3}, {"c", 2, INFINITY}});
  const Chart c = parse(render_svg_plot(p));
  ASSERT_EQ(c.markers.size(), 1u);
  EXPECT_EQ(c.labels.size(), 1u);
}

TEST(SvgPlot, CrestSweepLinesAndLegend) {
  // The --sweep-crest chart: lines, no point labels; the legend clear of the
  // frame and on the canvas even with long names, and past ten series the
  // lines differ by dash pattern as the colours repeat.
  PlotSpec p;
  p.title = "QSNR by block crest factor (normal, blocks of 32)";
  for (int s = 0; s < 12; ++s) {
    PlotSeries ser;
    ser.label = s == 3 ? "e2m1/g16/sf=ue4m3/scale=mse/with/a/long/tail" : "scheme" + std::to_string(s);
    ser.line = true;
    for (int k = 0; k < 12; ++k) {
      ser.x.push_back(1.5 + 0.2 * k);
      ser.y.push_back(18 + 2 * s - 0.1 * k * (s % 3));
    }
    p.series.push_back(ser);
  }
  const std::string svg = render_svg_plot(p);
  const Chart c = parse(svg);
  for (const std::string& b : layout_problems(c)) ADD_FAILURE() << b;
  EXPECT_TRUE(c.labels.empty());
  EXPECT_EQ(c.markers.size(), 12u * 12u);
  EXPECT_EQ(elements(svg, "path").size(), 12u);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
}

TEST(SvgPlot, LongTitleFitsTheCanvas) {
  PlotSpec p = points({{"a", 1, 2}});
  p.title = "QSNR by block crest factor (" + std::string(200, 'x') + ".npy, blocks of 32)";
  const Chart c = parse(render_svg_plot(p));
  ASSERT_FALSE(c.other_text.empty());
  const SvgBox& title = c.other_text.front();
  EXPECT_GE(title.x0, 0);
  EXPECT_LE(title.x1, c.width);
}

}  // namespace
}  // namespace lowbit
