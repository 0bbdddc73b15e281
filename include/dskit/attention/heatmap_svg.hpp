// Attention heat maps as a standalone SVG: one panel per head, queries down, keys across, a colour scale.
//
//     auto w = attn.attention_weights(x);                        // std::vector<matrix<float>>, one per head
//     write_attention_svg("attn.svg", w, tokens);                 // self-attention: tokens on both axes
//     attention_svg_options o;
//     o.title = "layer 3";
//     write_attention_svg(std::cout, w, text_tokens, image_patches, o);  // cross-attention: two label lists
//
// Cell (i, j) of panel h is weight w[h](i, j): how much query token i reads key token j. Colours run from
// white (0) to dark blue (the largest weight drawn, or options.max_weight); a legend shows the scale. Each
// cell carries a <title> with its value (shown on hover) unless options.cell_tooltips is off. Labels are
// optional; without key labels, the query labels serve for the keys when the counts agree (self-attention).
//
// Structure, for tools and tests: each panel is a <g class="panel">, each cell a <rect class="cell">.
//
// Errors: shape_error naming "attention_svg" when the heads' shapes differ or a label list has the wrong
// length; value_error for a negative option; io_error when the file cannot be written.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"
#include "dskit/manifold/svg_scatter.hpp" // detail::xml_escape

namespace dskit {

struct attention_svg_options {
    int cell = 0;                         ///< pixels per cell; 0: about 320 px per panel side, 4 to 32 px per cell
    int columns = 0;                      ///< panels per row; 0: up to 4
    float max_weight = 0.0f;              ///< weight drawn darkest; 0: the largest weight in the maps
    std::string title;                    ///< drawn above the panels
    std::vector<std::string> head_titles; ///< one per head; empty: "head 0", "head 1", ...
    bool cell_tooltips = true;            ///< a <title> with the value in each cell
};

namespace detail {

/// White to dark blue (ColorBrewer "Blues", 9 classes), linearly interpolated; t in [0, 1].
inline std::string heat_colour(double t)
{
    static constexpr std::array<std::array<int, 3>, 9> anchors{{{247, 251, 255},
                                                                {222, 235, 247},
                                                                {198, 219, 239},
                                                                {158, 202, 225},
                                                                {107, 174, 214},
                                                                {66, 146, 198},
                                                                {33, 113, 181},
                                                                {8, 81, 156},
                                                                {8, 48, 107}}};
    if (!std::isfinite(t)) return "#bbbbbb";
    t = std::clamp(t, 0.0, 1.0) * (anchors.size() - 1);
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(t), anchors.size() - 2);
    const double f = t - static_cast<double>(k);
    char buf[8];
    int rgb[3];
    for (int c = 0; c < 3; ++c)
        rgb[c] = static_cast<int>(std::lround(anchors[k][c] + f * (anchors[k + 1][c] - anchors[k][c])));
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    return buf;
}

inline std::string short_number(double x)
{
    std::ostringstream s;
    s.precision(3);
    s << x;
    return s.str();
}

} // namespace detail

/// Writes the heat maps of `weights` (one [N, M] matrix per head) as SVG to `out`.
inline void write_attention_svg(std::ostream& out, std::span<const matrix<float>> weights,
                                std::span<const std::string> query_labels = {},
                                std::span<const std::string> key_labels = {}, const attention_svg_options& o = {})
{
    constexpr std::string_view op = "attention_svg";
    const auto heads = static_cast<index_t>(weights.size());
    const index_t n = heads > 0 ? weights[0].rows() : 0, m = heads > 0 ? weights[0].cols() : 0;
    for (const auto& w : weights)
        if (w.rows() != n || w.cols() != m)
            detail::throw_shape(op, "every head of shape " + detail::shape_string({n, m}), detail::shape_of(w));
    if (key_labels.empty() && static_cast<index_t>(query_labels.size()) == m) key_labels = query_labels;
    if (!query_labels.empty() && static_cast<index_t>(query_labels.size()) != n)
        detail::throw_shape(op, std::to_string(n) + " query labels (or none)", std::to_string(query_labels.size()));
    if (!key_labels.empty() && static_cast<index_t>(key_labels.size()) != m)
        detail::throw_shape(op, std::to_string(m) + " key labels (or none)", std::to_string(key_labels.size()));
    if (!o.head_titles.empty() && static_cast<index_t>(o.head_titles.size()) != heads)
        detail::throw_shape(op, std::to_string(heads) + " head titles (or none)", std::to_string(o.head_titles.size()));
    if (o.cell < 0 || o.columns < 0 || !(o.max_weight >= 0.0f))
        throw value_error(detail::describe(op, "cell, columns and max_weight >= 0",
                                           "cell = " + std::to_string(o.cell) +
                                               ", columns = " + std::to_string(o.columns) +
                                               ", max_weight = " + std::to_string(o.max_weight)));

    double vmax = o.max_weight;
    if (vmax == 0.0)
        for (const auto& w : weights)
            for (index_t i = 0; i < w.size(); ++i)
                if (std::isfinite(w.data()[i])) vmax = std::max(vmax, static_cast<double>(w.data()[i]));
    if (vmax <= 0.0) vmax = 1.0;

    // Geometry: labels only where the cells are big enough to read them.
    const int cell = o.cell > 0 ? o.cell : std::clamp(static_cast<int>(320 / std::max<index_t>({n, m, 1})), 4, 32);
    const int font = std::min(12, cell - 2);
    const bool labels = font >= 6;
    const auto label_extent = [&](std::span<const std::string> ls) {
        std::size_t len = 0;
        for (const auto& l : ls) len = std::max(len, l.size());
        return labels && len > 0 ? static_cast<int>(static_cast<double>(len) * font * 0.62) + 6 : 0;
    };
    const int left = label_extent(query_labels), top = label_extent(key_labels);
    const int title_h = 20, gap = 24, margin = 10;
    const int panel_w = left + static_cast<int>(m) * cell, panel_h = title_h + top + static_cast<int>(n) * cell;
    const int cols = static_cast<int>(o.columns > 0 ? std::min<index_t>(o.columns, std::max<index_t>(heads, 1))
                                                    : std::min<index_t>(4, std::max<index_t>(heads, 1)));
    const int rows = static_cast<int>((std::max<index_t>(heads, 1) + cols - 1) / cols);
    const int head_y = o.title.empty() ? 0 : 26;
    const int grid_w = cols * panel_w + (cols - 1) * gap, grid_h = rows * panel_h + (rows - 1) * gap;
    const int legend_x = margin + grid_w + gap, legend_h = std::clamp(grid_h - title_h - top, 80, 240);
    const int width = legend_x + 70,
              height = std::max(margin + head_y + grid_h, head_y + title_h + legend_h + 30) + margin;

    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
        << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!o.title.empty())
        out << "<text x=\"" << margin << "\" y=\"18\" font-size=\"15\">" << detail::xml_escape(o.title) << "</text>\n";

    for (index_t h = 0; h < heads; ++h) {
        const auto& w = weights[static_cast<std::size_t>(h)];
        const int px = margin + static_cast<int>(h % cols) * (panel_w + gap);
        const int py = margin + head_y + static_cast<int>(h / cols) * (panel_h + gap);
        const std::string name =
            o.head_titles.empty() ? "head " + std::to_string(h) : o.head_titles[static_cast<std::size_t>(h)];
        out << "<g class=\"panel\" transform=\"translate(" << px << ',' << py << ")\">\n<text x=\"" << left
            << "\" y=\"14\" font-size=\"13\">" << detail::xml_escape(name) << "</text>\n";
        const int y0 = title_h + top;
        if (labels) {
            for (index_t i = 0; i < static_cast<index_t>(query_labels.size()); ++i)
                out << "<text x=\"" << left - 4 << "\" y=\"" << y0 + static_cast<int>(i) * cell + cell / 2
                    << "\" font-size=\"" << font << "\" text-anchor=\"end\" dominant-baseline=\"middle\">"
                    << detail::xml_escape(query_labels[static_cast<std::size_t>(i)]) << "</text>\n";
            for (index_t j = 0; j < static_cast<index_t>(key_labels.size()); ++j) {
                const int x = left + static_cast<int>(j) * cell + cell / 2, y = y0 - 4;
                out << "<text transform=\"translate(" << x << ',' << y << ") rotate(-90)\" font-size=\"" << font
                    << "\" dominant-baseline=\"middle\">" << detail::xml_escape(key_labels[static_cast<std::size_t>(j)])
                    << "</text>\n";
            }
        }
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < m; ++j) {
                const double v = w(i, j);
                out << "<rect class=\"cell\" x=\"" << left + static_cast<int>(j) * cell << "\" y=\""
                    << y0 + static_cast<int>(i) * cell << "\" width=\"" << cell << "\" height=\"" << cell
                    << "\" fill=\"" << detail::heat_colour(v / vmax) << '"';
                if (o.cell_tooltips) {
                    out << "><title>";
                    if (!query_labels.empty())
                        out << detail::xml_escape(query_labels[static_cast<std::size_t>(i)]);
                    else
                        out << "query " << i;
                    out << " \xe2\x86\x92 "; // U+2192 RIGHTWARDS ARROW
                    if (!key_labels.empty())
                        out << detail::xml_escape(key_labels[static_cast<std::size_t>(j)]);
                    else
                        out << "key " << j;
                    out << ": " << detail::short_number(v) << "</title></rect>\n";
                } else {
                    out << "/>\n";
                }
            }
        out << "<rect x=\"" << left << "\" y=\"" << y0 << "\" width=\"" << m * cell << "\" height=\"" << n * cell
            << "\" fill=\"none\" stroke=\"#888\" stroke-width=\"0.5\"/>\n</g>\n";
    }

    // Colour scale: a vertical gradient from 0 (bottom) to vmax (top), with three ticks.
    const int ly = margin + head_y + title_h + top;
    out << "<defs><linearGradient id=\"dskit-attention-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
    for (int k = 0; k <= 8; ++k)
        out << "<stop offset=\"" << k / 8.0 << "\" stop-color=\"" << detail::heat_colour(k / 8.0) << "\"/>";
    out << "</linearGradient></defs>\n<g class=\"legend\">\n<rect x=\"" << legend_x << "\" y=\"" << ly
        << "\" width=\"14\" height=\"" << legend_h
        << "\" fill=\"url(#dskit-attention-scale)\" stroke=\"#888\" stroke-width=\"0.5\"/>\n";
    for (int k = 0; k <= 2; ++k) {
        const int y = ly + legend_h - k * legend_h / 2;
        out << "<text x=\"" << legend_x + 19 << "\" y=\"" << y << "\" font-size=\"11\" dominant-baseline=\"middle\">"
            << detail::short_number(vmax * k / 2.0) << "</text>\n";
    }
    out << "<text x=\"" << legend_x << "\" y=\"" << ly - 16 << "\" font-size=\"11\">weight</text>\n</g>\n</svg>\n";
}

/// The SVG text of write_attention_svg(out, ...).
inline std::string attention_svg(std::span<const matrix<float>> weights, std::span<const std::string> query_labels = {},
                                 std::span<const std::string> key_labels = {}, const attention_svg_options& o = {})
{
    std::ostringstream s;
    write_attention_svg(s, weights, query_labels, key_labels, o);
    return s.str();
}

/// Writes the SVG to `path` (io_error if it cannot be written).
inline void write_attention_svg(const std::string& path, std::span<const matrix<float>> weights,
                                std::span<const std::string> query_labels = {},
                                std::span<const std::string> key_labels = {}, const attention_svg_options& o = {})
{
    const std::string svg = attention_svg(weights, query_labels, key_labels, o);
    std::ofstream f(path);
    if (!f) throw io_error(detail::describe("write_attention_svg", "a writable file", "cannot open " + path));
    f << svg;
    if (!f) throw io_error(detail::describe("write_attention_svg", "a successful write", "a write error on " + path));
}

} // namespace dskit
