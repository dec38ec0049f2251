#include "lowbit/eval/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>

namespace lowbit {

namespace {

// Advance widths of DejaVu Sans for ' ' .. '~', in 1/2048 em, as librsvg
// lays them out (unhinted: it positions glyphs at subpixel offsets, so
// widths add up exactly).
constexpr uint16_t kAdvance[95] = {
    651,  819,  943,  1715, 1306, 1946, 1600, 563,  798,  798,  1024, 1719, 649,  738,  653,  691,   // ' ' .. '/'
    1306, 1306, 1306, 1306, 1306, 1306, 1306, 1306, 1306, 1306, 691,  691,  1719, 1719, 1719, 1088,  // '0' .. '?'
    2048, 1459, 1408, 1434, 1574, 1297, 1178, 1587, 1540, 606,  606,  1344, 1143, 1771, 1532, 1613,  // '@' .. 'O'
    1233, 1613, 1421, 1301, 1250, 1498, 1459, 2027, 1404, 1250, 1404, 798,  691,  798,  1719, 1024,  // 'P' .. '_'
    1024, 1259, 1301, 1126, 1301, 1259, 721,  1301, 1301, 567,  567,  1186, 567,  1997, 1301, 1253,  // '`' .. 'o'
    1301, 1301, 842,  1067, 806,  1301, 1212, 1677, 1212, 1212, 1075, 1301, 691,  1301, 1719,        // 'p' .. '~'
};

// Ink extent around the baseline and the start point, in em. Measured
// DejaVu Sans glyphs reach 0.83 em up ('l', '(') and 0.25 em down ('g',
// '_'); the rest is the anti-aliasing fringe and letters such as 'J' and
// 'j' that start left of the pen.
constexpr double kAscent = 0.87, kAscentAccented = 1.02, kDescent = 0.28, kLeftBearing = 0.13, kRightBearing = 0.09;

constexpr double kMarkerR = 4;     // marker radius
constexpr double kMarkerGap = 2;   // clearance between a label and any marker
constexpr double kLabelGap = 3;    // clearance between two labels
constexpr double kFrameGap = 2;    // clearance between a label and the frame
constexpr double kLeaderAt = 11;   // a label farther than this from its marker gets a leader line

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
constexpr size_t kNumColors = sizeof kColors / sizeof kColors[0];
// Past ten series the colours repeat; the lines then differ by dash pattern.
const char* kDashes[] = {"", "7 4", "2 3"};

// One axis: data range widened so that no marker sits on the frame, then
// rounded out to whole ticks.
struct Axis {
  double lo = 0, hi = 1, step = 1;
  int ticks = 1;  // intervals
};

Axis make_axis(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  // Equal values (to within rounding) get a range around them: +-0.5, or
  // +-0.05% where that is too small to show at their magnitude.
  const double mag = std::max({1.0, std::fabs(lo), std::fabs(hi)});
  if (hi - lo < 1e-9 * mag) {
    const double half = std::max(0.5, 5e-4 * mag);
    lo -= half;
    hi += half;
  }
  const double pad = 0.04 * (hi - lo);
  lo -= pad;
  hi += pad;
  Axis a;
  a.step = nice_step(hi - lo);
  a.lo = std::floor(lo / a.step) * a.step;
  a.hi = std::ceil(hi / a.step) * a.step;
  // Counted, not accumulated: adding a step to a huge value may not move it.
  a.ticks = std::max(1, static_cast<int>(std::lround((a.hi - a.lo) / a.step)));
  a.hi = a.lo + a.ticks * a.step;
  return a;
}

// Euclidean length; std::hypot guards against overflow these pixel
// distances cannot reach, and costs several times more.
double len(double dx, double dy) { return std::sqrt(dx * dx + dy * dy); }

struct Segment {
  double x0, y0, x1, y1;
};

double dist_point_box(double x, double y, const SvgBox& b) {
  const double dx = std::max({b.x0 - x, 0.0, x - b.x1});
  const double dy = std::max({b.y0 - y, 0.0, y - b.y1});
  return len(dx, dy);
}

SvgBox grow(const SvgBox& b, double d) { return {b.x0 - d, b.y0 - d, b.x1 + d, b.y1 + d}; }

// Liang-Barsky: does the segment pass through the box?
bool segment_hits_box(const Segment& s, const SvgBox& b) {
  double t0 = 0, t1 = 1;
  const double dx = s.x1 - s.x0, dy = s.y1 - s.y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {s.x0 - b.x0, b.x1 - s.x0, s.y0 - b.y0, b.y1 - s.y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
    } else {
      const double t = q[i] / p[i];
      if (p[i] < 0) t0 = std::max(t0, t);
      else t1 = std::min(t1, t);
      if (t0 > t1) return false;
    }
  }
  return true;
}

double dist_point_segment(double x, double y, const Segment& s) {
  const double dx = s.x1 - s.x0, dy = s.y1 - s.y0;
  const double len2 = dx * dx + dy * dy;
  const double t = len2 > 0 ? std::clamp(((x - s.x0) * dx + (y - s.y0) * dy) / len2, 0.0, 1.0) : 0.0;
  return len(x - (s.x0 + t * dx), y - (s.y0 + t * dy));
}

bool segments_cross(const Segment& a, const Segment& b) {
  const auto orient = [](double ax, double ay, double bx, double by, double cx, double cy) {
    const double v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
    return (v > 1e-9) - (v < -1e-9);
  };
  const int o1 = orient(a.x0, a.y0, a.x1, a.y1, b.x0, b.y0), o2 = orient(a.x0, a.y0, a.x1, a.y1, b.x1, b.y1);
  const int o3 = orient(b.x0, b.y0, b.x1, b.y1, a.x0, a.y0), o4 = orient(b.x0, b.y0, b.x1, b.y1, a.x1, a.y1);
  return o1 * o2 < 0 && o3 * o4 < 0;
}

struct Marker {
  double cx, cy;
};

// A point label to place: its text, its marker, and its ink box relative to
// the text's start point on the baseline.
struct LabelJob {
  std::string text;
  size_t marker;
  SvgBox rel;
};

struct Placement {
  bool placed = false;
  SvgBox box;       // the ink box
  bool leader = false;
  Segment lead{};   // as drawn: from the marker's rim to the box
  double base = 0;  // distance from the marker and position preference
};

// Costs, in pixels of displacement they are worth. Hard ones (overlaps,
// and leaders through labels) are never accepted in the final layout;
// the others only steer it.
constexpr double kHard = 1e5;
constexpr double kCrossesMarker = 1000;  // a leader over a marker other than its own
constexpr double kCrossesLeader = 300;   // two leaders crossing
constexpr double kOverLine = 150;        // a label over a data line
constexpr double kLeaderOverLine = 10;   // a leader crossing a data line
constexpr double kNeedsLeader = 8;       // a displaced label is harder to read than an adjacent one
constexpr double kGridPref = 2;          // the eight positions beside a marker come first
constexpr double kUnplaced = 1e6;

Segment leader_for(const Marker& m, const SvgBox& b) {
  const double nx = std::clamp(m.cx, b.x0, b.x1), ny = std::clamp(m.cy, b.y0, b.y1);
  const double dx = nx - m.cx, dy = ny - m.cy, d = len(dx, dy);
  const double ux = d > 0 ? dx / d : 1, uy = d > 0 ? dy / d : 0;
  return {m.cx + ux * (kMarkerR + 1), m.cy + uy * (kMarkerR + 1), nx - ux, ny - uy};
}

// Pixels of the label area that no label may touch, as a summed-area table
// so that testing a candidate box costs four lookups. Only pixels wholly
// inside an exclusion zone are marked, so a hit is certain and a miss still
// gets the exact test: the table only saves time.
class Blocked {
 public:
  explicit Blocked(const SvgBox& area)
      : x0_(area.x0), y0_(area.y0), w_(std::max(0, static_cast<int>(std::ceil(area.x1 - area.x0)))),
        h_(std::max(0, static_cast<int>(std::ceil(area.y1 - area.y0)))), cells_(static_cast<size_t>(w_) * h_, 0),
        sum_(static_cast<size_t>(w_ + 1) * (h_ + 1), 0) {}

  void mark(const SvgBox& zone) {
    const int i0 = std::max(0, static_cast<int>(std::ceil(zone.x0 - x0_)));
    const int i1 = std::min(w_, static_cast<int>(std::floor(zone.x1 - x0_)));
    const int j0 = std::max(0, static_cast<int>(std::ceil(zone.y0 - y0_)));
    const int j1 = std::min(h_, static_cast<int>(std::floor(zone.y1 - y0_)));
    for (int j = j0; j < j1; ++j) {
      for (int i = i0; i < i1; ++i) cells_[static_cast<size_t>(j) * w_ + i] = 1;
    }
  }

  void rebuild() {
    for (int j = 0; j < h_; ++j) {
      int row = 0;
      for (int i = 0; i < w_; ++i) {
        row += cells_[static_cast<size_t>(j) * w_ + i];
        at(i + 1, j + 1) = at(i + 1, j) + row;
      }
    }
  }

  // Does the box overlap a marked pixel?
  bool hits(const SvgBox& b) const {
    const int i0 = std::clamp(static_cast<int>(std::floor(b.x0 - x0_)), 0, w_);
    const int i1 = std::clamp(static_cast<int>(std::ceil(b.x1 - x0_)), 0, w_);
    const int j0 = std::clamp(static_cast<int>(std::floor(b.y0 - y0_)), 0, h_);
    const int j1 = std::clamp(static_cast<int>(std::ceil(b.y1 - y0_)), 0, h_);
    return at(i1, j1) - at(i0, j1) - at(i1, j0) + at(i0, j0) > 0;
  }

 private:
  int& at(int i, int j) { return sum_[static_cast<size_t>(j) * (w_ + 1) + i]; }
  int at(int i, int j) const { return sum_[static_cast<size_t>(j) * (w_ + 1) + i]; }
  double x0_, y0_;
  int w_, h_;
  std::vector<uint8_t> cells_;
  std::vector<int> sum_;
};

// A fixed-seed generator (splitmix64): the annealing is part of the layout,
// and the layout must not vary between runs or standard libraries.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

// Lays out the point labels of one chart geometry.
class LabelLayout {
 public:
  LabelLayout(const std::vector<LabelJob>& jobs, const std::vector<Marker>& markers, const std::vector<Segment>& lines,
              const SvgBox& area)
      : jobs_(jobs), markers_(markers), lines_(lines), area_(area) {}

  // The eight positions beside marker i's label, clockwise from upper
  // right: the diagonal ones off the marker's corner, the others off its
  // side. Their index is their preference.
  std::array<SvgBox, 8> beside(size_t i) const {
    const Marker& m = markers_[jobs_[i].marker];
    const double w = width(i), h = height(i);
    const double c = kMarkerR + kMarkerGap + 0.5, d = c * 0.75;
    return {{
        {m.cx + d, m.cy - d - h, m.cx + d + w, m.cy - d},      // upper right
        {m.cx + c, m.cy - h / 2, m.cx + c + w, m.cy + h / 2},  // right
        {m.cx + d, m.cy + d, m.cx + d + w, m.cy + d + h},      // lower right
        {m.cx - d - w, m.cy - d - h, m.cx - d, m.cy - d},      // upper left
        {m.cx - c - w, m.cy - h / 2, m.cx - c, m.cy + h / 2},  // left
        {m.cx - d - w, m.cy + d, m.cx - d, m.cy + d + h},      // lower left
        {m.cx - w / 2, m.cy - c - h, m.cx + w / 2, m.cy - c},  // above
        {m.cx - w / 2, m.cy + c, m.cx + w / 2, m.cy + c + h},  // below
    }};
  }

  // Label i at `box`; `slot` is its index among beside(i), or -1.
  Placement at(size_t i, const SvgBox& box, int slot) const {
    const Marker& m = markers_[jobs_[i].marker];
    Placement p;
    p.placed = true;
    p.box = box;
    const double d = dist_point_box(m.cx, m.cy, box);
    p.leader = d > kLeaderAt;
    if (p.leader) p.lead = leader_for(m, box);
    p.base = d + (slot >= 0 ? 0.25 * slot : kGridPref) + (p.leader ? kNeedsLeader : 0);
    return p;
  }

  // The costs of label i alone: its position, and what it covers.
  double solo(size_t i, const Placement& p) const {
    double c = p.base;
    if (!p.box.inside(area_)) c += kHard;
    const Marker& own = markers_[jobs_[i].marker];
    for (size_t k = 0; k < markers_.size(); ++k) {
      const Marker& o = markers_[k];
      if (dist_point_box(o.cx, o.cy, p.box) < kMarkerR + kMarkerGap) c += kHard;
      // A marker drawn over this one's own is crossed whichever way the
      // leader goes: no point steering by it.
      if (p.leader && len(o.cx - own.cx, o.cy - own.cy) > 2 * kMarkerR + 3.5 &&
          dist_point_segment(o.cx, o.cy, p.lead) < kMarkerR + 2.5) {
        c += kCrossesMarker;
      }
    }
    for (const Segment& s : lines_) {
      if (segment_hits_box(s, p.box)) c += kOverLine;
      if (p.leader && segments_cross(p.lead, s)) c += kLeaderOverLine;
    }
    return c;
  }

  // The costs between two labels.
  static double pair(const Placement& a, const Placement& b) {
    double c = 0;
    if (grow(a.box, kLabelGap / 2).overlaps(grow(b.box, kLabelGap / 2))) c += kHard;
    if (a.leader && segment_hits_box(a.lead, grow(b.box, 1))) c += kHard;
    if (b.leader && segment_hits_box(b.lead, grow(a.box, 1))) c += kHard;
    if (a.leader && b.leader && segments_cross(a.lead, b.lead)) c += kCrossesLeader;
    return c;
  }

  // Label i's share of the cost at p: its own costs and those of its pairs.
  // Stops adding once past `limit` (the caller only needs to know that).
  double energy_of(size_t i, const Placement& p, const std::vector<Placement>& all,
                   double limit = std::numeric_limits<double>::infinity()) const {
    double e = p.base;
    // Pairs first: against a crowd they are what fails, and failing early
    // is what makes the scans affordable.
    for (size_t j = 0; j < all.size() && e < limit; ++j) {
      if (j != i && all[j].placed) e += pair(p, all[j]);
    }
    if (e >= limit) return e;
    return e + solo(i, p) - p.base;
  }

  double total(const std::vector<Placement>& all) const {
    double e = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].placed) {
        e += kUnplaced;
        continue;
      }
      e += solo(i, all[i]);
      for (size_t j = i + 1; j < all.size(); ++j) {
        if (all[j].placed) e += pair(all[i], all[j]);
      }
    }
    return e;
  }

  // Greedy placement in one order: each label takes the cheapest position
  // that breaks no hard constraint. Candidates are the eight positions
  // beside the marker, then a grid over the whole area ranked by distance;
  // since the soft costs only add, the scan stops once the next
  // candidate's rank alone exceeds the best cost found. A label with no
  // valid position is left unplaced.
  std::vector<Placement> greedy(const std::vector<size_t>& order) const {
    std::vector<Placement> out(jobs_.size());
    Blocked blocked(area_);
    // The square inscribed in a marker's exclusion disc.
    const double in = (kMarkerR + kMarkerGap) / std::sqrt(2.0);
    for (const Marker& m : markers_) blocked.mark({m.cx - in, m.cy - in, m.cx + in, m.cy + in});
    blocked.rebuild();
    // Candidates as 64-bit keys: the rank's float bits (order-preserving
    // for non-negative floats) over the candidate's index, so that ties go
    // to the lower index and the order never depends on heap internals.
    std::vector<uint64_t> keys;
    for (size_t i : order) {
      const Marker& m = markers_[jobs_[i].marker];
      const double w = width(i), h = height(i);
      keys.clear();
      const auto near = beside(i);
      const auto key = [](double rank, size_t index) {
        const float f = static_cast<float>(rank);
        uint32_t bits;
        std::memcpy(&bits, &f, sizeof bits);
        return (static_cast<uint64_t>(bits) << 32) | index;
      };
      for (int k = 0; k < 8; ++k) {
        if (near[k].inside(area_) && !blocked.hits(near[k])) keys.push_back(key(at(i, near[k], k).base, k));
      }
      const double step = 3;
      const size_t nx = area_.x1 - area_.x0 >= w ? static_cast<size_t>((area_.x1 - area_.x0 - w) / step) + 1 : 0;
      const size_t ny = area_.y1 - area_.y0 >= h ? static_cast<size_t>((area_.y1 - area_.y0 - h) / step) + 1 : 0;
      const auto grid_box = [&](size_t g) {
        const double x = area_.x0 + step * static_cast<double>(g % nx);
        const double y = area_.y0 + step * static_cast<double>(g / nx);
        return SvgBox{x, y, x + w, y + h};
      };
      for (size_t g = 0; g < nx * ny; ++g) {
        const SvgBox b = grid_box(g);
        if (blocked.hits(b)) continue;
        const double d = dist_point_box(m.cx, m.cy, b);
        keys.push_back(key(d + kGridPref + (d > kLeaderAt ? kNeedsLeader : 0), 8 + g));
      }
      // A heap, not a sort: the scan usually stops after a few candidates.
      std::make_heap(keys.begin(), keys.end(), std::greater<>());
      Placement best;
      double best_cost = kHard;
      int tried = 0;
      for (auto end = keys.end(); end != keys.begin(); --end) {
        std::pop_heap(keys.begin(), end, std::greater<>());
        const uint64_t k = *(end - 1);
        const uint32_t bits = static_cast<uint32_t>(k >> 32);
        float rank;
        std::memcpy(&rank, &bits, sizeof rank);
        // Past a few thousand refusals the spot is boxed in; annealing takes over.
        if (rank >= best_cost || (!best.placed && ++tried > 3000)) break;
        const size_t index = static_cast<size_t>(k & 0xffffffffu);
        const Placement p = index < 8 ? at(i, near[index], static_cast<int>(index)) : at(i, grid_box(index - 8), -1);
        const double e = energy_of(i, p, out, best_cost);
        if (e < best_cost) {
          best = p;
          best_cost = e;
        }
      }
      if (best.placed) {
        out[i] = best;
        blocked.mark(grow(best.box, kLabelGap));
        blocked.rebuild();
      }
    }
    return out;
  }

  // Simulated annealing from a greedy layout. Unplaced labels start beside
  // their markers, wherever that clashes, and every label may move
  // (beside its marker, a few pixels, anywhere near, anywhere) until the
  // clashes are gone. Moves that add cost are taken with a probability
  // that falls with the temperature, so that a label can leave a good spot
  // that blocks another one's only leader. Returns the cheapest layout seen.
  std::vector<Placement> anneal(std::vector<Placement> cur) const {
    const size_t n = cur.size();
    for (size_t i = 0; i < n; ++i) {
      if (cur[i].placed) continue;
      const SvgBox b = clamp_into_area(beside(i)[0]);
      cur[i] = at(i, b, -1);
    }
    double total_e = total(cur);
    std::vector<Placement> best = cur;
    double best_e = total_e;
    Rng rng{0x5eed1abe1ull};
    const int iters = static_cast<int>(std::clamp<size_t>(5000 * n, 20000, 300000));
    const double t0 = 300, t1 = 0.3;
    for (int it = 0; it < iters; ++it) {
      const double temp = t0 * std::pow(t1 / t0, static_cast<double>(it) / iters);
      const size_t i = static_cast<size_t>(rng.below(static_cast<int>(n)));
      const Marker& m = markers_[jobs_[i].marker];
      const double w = width(i), h = height(i);
      const int kind = rng.below(10);
      SvgBox b;
      int slot = -1;
      if (kind < 3) {
        slot = rng.below(8);
        b = beside(i)[slot];
        if (!b.inside(area_)) continue;
      } else if (kind < 7) {
        const double dx = 3.0 * (rng.below(9) - 4), dy = 3.0 * (rng.below(9) - 4);
        b = clamp_into_area({cur[i].box.x0 + dx, cur[i].box.y0 + dy, cur[i].box.x1 + dx, cur[i].box.y1 + dy});
      } else if (kind < 9) {
        const double x = m.cx - w / 2 + 240 * (rng.uniform() - 0.5), y = m.cy - h / 2 + 160 * (rng.uniform() - 0.5);
        b = clamp_into_area({x, y, x + w, y + h});
      } else {
        const double x = area_.x0 + (area_.x1 - area_.x0 - w) * rng.uniform();
        const double y = area_.y0 + (area_.y1 - area_.y0 - h) * rng.uniform();
        b = {x, y, x + w, y + h};
      }
      const Placement p = at(i, b, slot);
      // A move costing 30 temperatures more is taken with odds of e^-30:
      // no need to price it exactly.
      const double old_e = energy_of(i, cur[i], cur), limit = old_e + 30 * temp;
      const double new_e = energy_of(i, p, cur, limit);
      if (new_e >= limit) continue;
      const double delta = new_e - old_e;
      if (delta <= 0 || rng.uniform() < std::exp(-delta / temp)) {
        cur[i] = p;
        total_e += delta;
        if (total_e < best_e - 1e-9) {
          best = cur;
          best_e = total_e;
        }
      }
    }
    return best;
  }

  // Labels whose position breaks a hard constraint: with another label, or
  // on their own.
  std::vector<int> hard_clashes(const std::vector<Placement>& all) const {
    std::vector<int> clashes(all.size(), 0);
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].placed) continue;
      if (solo(i, all[i]) >= kHard) clashes[i]++;
      for (size_t j = i + 1; j < all.size(); ++j) {
        if (all[j].placed && pair(all[i], all[j]) >= kHard) clashes[i]++, clashes[j]++;
      }
    }
    return clashes;
  }

 private:
  double width(size_t i) const { return jobs_[i].rel.x1 - jobs_[i].rel.x0; }
  double height(size_t i) const { return jobs_[i].rel.y1 - jobs_[i].rel.y0; }

  SvgBox clamp_into_area(SvgBox b) const {
    const double dx = b.x0 < area_.x0 ? area_.x0 - b.x0 : b.x1 > area_.x1 ? area_.x1 - b.x1 : 0;
    const double dy = b.y0 < area_.y0 ? area_.y0 - b.y0 : b.y1 > area_.y1 ? area_.y1 - b.y1 : 0;
    return {b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy};
  }

  const std::vector<LabelJob>& jobs_;
  const std::vector<Marker>& markers_;
  const std::vector<Segment>& lines_;
  SvgBox area_;
};

// The text cut in the middle (whole code points) with an ellipsis until it
// fits `room` px: the ends of a title say the most.
std::string elide_middle(const std::string& s, double fs, double room) {
  if (svg_text_width(s, fs) <= room) return s;
  std::vector<size_t> starts;  // byte offset of each code point
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) starts.push_back(i);
  }
  const size_t n = starts.size();
  const auto at = [&](size_t k) { return k < n ? starts[k] : s.size(); };
  for (size_t keep = n; keep-- > 0;) {
    const size_t head = (keep + 1) / 2, tail = keep / 2;
    const std::string t = s.substr(0, at(head)) + "\xe2\x80\xa6" + s.substr(at(n - tail));
    if (svg_text_width(t, fs) <= room) return t;
  }
  return "\xe2\x80\xa6";
}

}  // namespace

double svg_text_width(std::string_view text, double font_size) {
  double units = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) units += kAdvance[c - 0x20];
    else if ((c & 0xc0) != 0x80) units += 2048;  // a non-ASCII code point (or a control byte): one em
  }
  return units / 2048 * font_size;
}

SvgBox svg_text_box(double x, double baseline, std::string_view anchor, std::string_view text, double font_size) {
  const double w = svg_text_width(text, font_size);
  const double start = anchor == "middle" ? x - w / 2 : anchor == "end" ? x - w : x;
  // Accented capitals ('Ü') reach above the ASCII ascent.
  const bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; });
  return {start - kLeftBearing * font_size, baseline - (ascii ? kAscent : kAscentAccented) * font_size,
          start + w + kRightBearing * font_size, baseline + kDescent * font_size};
}

std::string render_svg_plot(const PlotSpec& spec) {
  const double fs = kSvgFontSize;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : spec.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  }
  const Axis ax = make_axis(xlo, xhi), ay = make_axis(ylo, yhi);

  // Margins sized to what they hold: the y tick labels (right-aligned left
  // of the frame, clear of the rotated axis title at x = 18) and the legend.
  double ytick_w = 0;
  for (int k = 0; k <= ay.ticks; ++k) ytick_w = std::max(ytick_w, svg_text_width(tick_label(ay.lo + k * ay.step), fs));
  double legend_w = 0;
  for (const auto& s : spec.series) legend_w = std::max(legend_w, svg_text_width(s.label, fs));
  const double L = std::max(70.0, 34 + ytick_w), T = 40, B = 60, pw = 540;
  const double R = std::max(120.0, 14 + 30 + legend_w + 14);
  const double W = L + pw + R;
  const double legend_row = 18;
  double ph = std::max(420.0, legend_row * static_cast<double>(spec.series.size()) + 12);

  std::vector<Marker> markers;
  std::vector<LabelJob> jobs;
  std::vector<Segment> lines;
  std::vector<Placement> placed;
  std::vector<std::vector<size_t>> marker_of(spec.series.size());
  const auto px = [&](double v) { return L + (v - ax.lo) / (ax.hi - ax.lo) * pw; };
  double py_ph = ph;
  const auto py = [&](double v) { return T + (1 - (v - ay.lo) / (ay.hi - ay.lo)) * py_ph; };
  // Lay out; if some label found no free spot, give the frame more height
  // (labels can stack anywhere in it) and try again.
  for (int attempt = 0;; ++attempt) {
    py_ph = ph;
    markers.clear();
    jobs.clear();
    lines.clear();
    for (size_t si = 0; si < spec.series.size(); ++si) {
      const auto& s = spec.series[si];
      marker_of[si].clear();
      size_t prev = SIZE_MAX;  // an index: markers may reallocate
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        marker_of[si].push_back(markers.size());
        markers.push_back({px(s.x[i]), py(s.y[i])});
        if (s.line && prev != SIZE_MAX) {
          lines.push_back({markers[prev].cx, markers[prev].cy, markers.back().cx, markers.back().cy});
        }
        prev = markers.size() - 1;
        if (!s.line) jobs.push_back({s.label, markers.size() - 1, svg_text_box(0, 0, "start", s.label, fs)});
      }
    }
    const SvgBox area{L + kFrameGap, T + kFrameGap, L + pw - kFrameGap, T + ph - kFrameGap};
    // A few greedy orders (as given, most crowded first, right to left,
    // top to bottom); the cheapest layout wins, the first on a tie.
    std::vector<std::vector<size_t>> orders(4, std::vector<size_t>(jobs.size()));
    for (auto& o : orders) std::iota(o.begin(), o.end(), size_t{0});
    std::vector<int> crowd(jobs.size(), 0);
    for (size_t i = 0; i < jobs.size(); ++i) {
      for (const Marker& o : markers) {
        const Marker& m = markers[jobs[i].marker];
        crowd[i] += len(o.cx - m.cx, o.cy - m.cy) < 60;
      }
    }
    std::stable_sort(orders[1].begin(), orders[1].end(), [&](size_t a, size_t b) { return crowd[a] > crowd[b]; });
    std::stable_sort(orders[2].begin(), orders[2].end(),
                     [&](size_t a, size_t b) { return markers[jobs[a].marker].cx > markers[jobs[b].marker].cx; });
    std::stable_sort(orders[3].begin(), orders[3].end(),
                     [&](size_t a, size_t b) { return markers[jobs[a].marker].cy < markers[jobs[b].marker].cy; });
    const LabelLayout layout(jobs, markers, lines, area);
    double best_cost = std::numeric_limits<double>::infinity();
    for (const auto& order : orders) {
      std::vector<Placement> p = layout.greedy(order);
      const double cost = layout.total(p);
      if (cost < best_cost) {
        best_cost = cost;
        placed = std::move(p);
      }
      if (jobs.empty()) break;
    }
    // The greedy layout is a good start, not the end: annealing places what
    // it could not, and undoes its crossings where that is possible.
    if (!jobs.empty()) placed = layout.anneal(std::move(placed));
    std::vector<int> clashes = layout.hard_clashes(placed);
    if (std::all_of(clashes.begin(), clashes.end(), [](int c) { return c == 0; })) break;
    if (attempt == 5) {
      // Still no room: drop the most clashing labels until none clash (the
      // legend still names every series).
      for (;;) {
        const auto worst = std::max_element(clashes.begin(), clashes.end());
        if (*worst == 0) break;
        placed[static_cast<size_t>(worst - clashes.begin())].placed = false;
        clashes = layout.hard_clashes(placed);
      }
      break;
    }
    ph *= 1.35;
  }
  const double H = T + ph + B;

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) +
       "\" font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"" + num(fs) + "\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // The title shrinks rather than run off the canvas, and past that loses
  // its middle (a long file name, typically) to an ellipsis.
  const double title_room = W - 20;
  const double title_w = std::max(1.0, svg_text_width(spec.title, 15));
  const double title_fs = std::max(10.0, std::min(15.0, 15 * title_room / title_w));
  const std::string title = elide_middle(spec.title, title_fs, title_room);
  o += "<text x=\"" + num(W / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"" + num(title_fs) + "\">" +
       esc(title) + "</text>\n";
  for (int k = 0; k <= ax.ticks; ++k) {
    const double v = ax.lo + k * ax.step;
    o += "<line x1=\"" + num(px(v)) + "\" y1=\"" + num(T) + "\" x2=\"" + num(px(v)) + "\" y2=\"" + num(T + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(px(v)) + "\" y=\"" + num(T + ph + 18) + "\" text-anchor=\"middle\">" + tick_label(v) +
         "</text>\n";
  }
  for (int k = 0; k <= ay.ticks; ++k) {
    const double v = ay.lo + k * ay.step;
    o += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(L + pw) + "\" y2=\"" + num(py(v)) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(L - 8) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" + tick_label(v) +
         "</text>\n";
  }
  o += "<rect class=\"frame\" x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(pw) + "\" height=\"" +
       num(ph) + "\" fill=\"none\" stroke=\"black\"/>\n";
  o += "<text x=\"" + num(L + pw / 2) + "\" y=\"" + num(H - 18) + "\" text-anchor=\"middle\">" + esc(spec.x_label) +
       "</text>\n";
  o += "<text transform=\"translate(18," + num(T + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(spec.y_label) + "</text>\n";
  const auto color_of = [](size_t si) { return std::string(kColors[si % kNumColors]); };
  const auto dash_of = [](size_t si) {
    const char* d = kDashes[(si / kNumColors) % (sizeof kDashes / sizeof kDashes[0])];
    return *d ? std::string(" stroke-dasharray=\"") + d + "\"" : std::string();
  };
  // Lines first, then leaders, markers and labels, so that nothing hides a
  // marker or a label.
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    if (!s.line || marker_of[si].empty()) continue;
    std::string path;
    for (size_t m : marker_of[si]) path += (path.empty() ? "M" : " L") + num(markers[m].cx) + " " + num(markers[m].cy);
    o += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + color_of(si) + "\" stroke-width=\"2\"" + dash_of(si) +
         "/>\n";
  }
  std::vector<size_t> series_of_marker(markers.size());
  for (size_t si = 0; si < spec.series.size(); ++si) {
    for (size_t m : marker_of[si]) series_of_marker[m] = si;
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (!placed[j].placed || !placed[j].leader) continue;
    const Segment& l = placed[j].lead;
    o += "<line class=\"leader\" x1=\"" + num(l.x0) + "\" y1=\"" + num(l.y0) + "\" x2=\"" + num(l.x1) + "\" y2=\"" +
         num(l.y1) + "\" stroke=\"" + color_of(series_of_marker[jobs[j].marker]) + "\" stroke-width=\"0.8\"/>\n";
  }
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    size_t k = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      const Marker& m = markers[marker_of[si][k++]];
      o += "<circle class=\"marker\" cx=\"" + num(m.cx) + "\" cy=\"" + num(m.cy) + "\" r=\"" + num(kMarkerR) +
           "\" fill=\"" + color_of(si) + "\"><title>" + esc(s.label) + ": (" + tick_label(s.x[i]) + ", " +
           num(s.y[i]) + ")</title></circle>\n";
    }
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (!placed[j].placed) continue;
    const SvgBox& b = placed[j].box;
    o += "<text class=\"label\" x=\"" + num(b.x0 - jobs[j].rel.x0) + "\" y=\"" + num(b.y0 - jobs[j].rel.y0) +
         "\" fill=\"" + color_of(series_of_marker[jobs[j].marker]) + "\">" + esc(jobs[j].text) + "</text>\n";
  }
  // The legend, right of the frame: a swatch (a line sample for lines) and
  // the name per series.
  o += "<g class=\"legend\">\n";
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    const double ly = T + 14 + legend_row * static_cast<double>(si), lx = L + pw + 14;
    if (s.line) {
      o += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly - 3) + "\" x2=\"" + num(lx + 22) + "\" y2=\"" + num(ly - 3) +
           "\" stroke=\"" + color_of(si) + "\" stroke-width=\"2\"" + dash_of(si) + "/>\n";
    } else {
      o += "<rect x=\"" + num(lx + 5) + "\" y=\"" + num(ly - 9) + "\" width=\"12\" height=\"12\" fill=\"" +
           color_of(si) + "\"/>\n";
    }
    o += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly + 1) + "\">" + esc(s.label) + "</text>\n";
  }
  o += "</g>\n";
  o += "</svg>\n";
  return o;
}

}  // namespace lowbit
