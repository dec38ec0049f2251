#include "lowbit/eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace lowbit {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string tick_label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", std::fabs(v) < 1e-12 ? 0.0 : v);
  return b;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about 6 ticks.
double nice_step(double span) {
  if (!(span > 0)) return 1;
  const double raw = span / 6;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                         "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

}  // namespace

std::string render_svg_plot(const PlotSpec& spec) {
  const double W = 820, H = 520, L = 70, R = 210, T = 40, B = 60;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : spec.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double xs = nice_step(x1 - x0), ys = nice_step(y1 - y0);
  x0 = std::floor(x0 / xs) * xs;
  x1 = std::ceil(x1 / xs) * xs;
  y0 = std::floor(y0 / ys) * ys;
  y1 = std::ceil(y1 / ys) * ys;
  const double pw = W - L - R, ph = H - T - B;
  const auto px = [&](double v) { return L + (v - x0) / (x1 - x0) * pw; };
  const auto py = [&](double v) { return T + (1 - (v - y0) / (y1 - y0)) * ph; };
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(L + pw / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" + esc(spec.title) +
       "</text>\n";
  for (double v = x0; v <= x1 + xs / 2; v += xs) {
    o += "<line x1=\"" + num(px(v)) + "\" y1=\"" + num(T) + "\" x2=\"" + num(px(v)) + "\" y2=\"" + num(T + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(px(v)) + "\" y=\"" + num(T + ph + 18) + "\" text-anchor=\"middle\">" + tick_label(v) +
         "</text>\n";
  }
  for (double v = y0; v <= y1 + ys / 2; v += ys) {
    o += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(L + pw) + "\" y2=\"" + num(py(v)) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(L - 8) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" + tick_label(v) +
         "</text>\n";
  }
  o += "<rect x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
       "\" fill=\"none\" stroke=\"black\"/>\n";
  o += "<text x=\"" + num(L + pw / 2) + "\" y=\"" + num(H - 18) + "\" text-anchor=\"middle\">" + esc(spec.x_label) +
       "</text>\n";
  o += "<text transform=\"translate(18," + num(T + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(spec.y_label) + "</text>\n";
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    const std::string color = kColors[si % (sizeof kColors / sizeof kColors[0])];
    std::string path;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      path += (path.empty() ? "M" : " L") + num(px(s.x[i])) + " " + num(py(s.y[i]));
      o += "<circle cx=\"" + num(px(s.x[i])) + "\" cy=\"" + num(py(s.y[i])) + "\" r=\"4\" fill=\"" + color +
           "\"><title>" + esc(s.label) + ": (" + tick_label(s.x[i]) + ", " + num(s.y[i]) + ")</title></circle>\n";
      if (!s.line) {
        o += "<text x=\"" + num(px(s.x[i]) + 6) + "\" y=\"" + num(py(s.y[i]) - 6) + "\" fill=\"" + color + "\">" +
             esc(s.label) + "</text>\n";
      }
    }
    if (s.line && !path.empty()) {
      o += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    }
    const double ly = T + 14 + 18 * static_cast<double>(si);
    o += "<rect x=\"" + num(W - R + 14) + "\" y=\"" + num(ly - 9) + "\" width=\"12\" height=\"12\" fill=\"" + color +
         "\"/>\n";
    o += "<text x=\"" + num(W - R + 32) + "\" y=\"" + num(ly + 1) + "\">" + esc(s.label) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace lowbit
