// A 2-D scatter plot as a standalone SVG, one colour per label, with a legend.
//
//   write_svg_scatter("digits.svg", r.embedding, labels);           // labels may be empty: one colour
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "dskit/core/error.hpp"
#include "dskit/core/matrix.hpp"

namespace dskit {

namespace detail {
inline std::string xml_escape(std::string_view s)
{
    std::string out;
    for (char c : s) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '"')
            out += "&quot;";
        else
            out += c;
    }
    return out;
}
} // namespace detail

struct svg_scatter_options {
    int width = 800; ///< plot area in pixels (the legend adds 120 on the right)
    int height = 800;
    double point_radius = 2.5;
    std::string title;
};

/// SVG text of a scatter of the first two columns of y, coloured by label (tab10 colours, then cycled).
inline std::string svg_scatter(const_matrix_ref<float> y, std::span<const std::int64_t> labels = {},
                               const svg_scatter_options& o = {})
{
    if (y.cols() < 2) detail::throw_shape("svg_scatter", "points with at least 2 columns", detail::shape_of(y));
    if (!labels.empty() && static_cast<index_t>(labels.size()) != y.rows())
        detail::throw_shape("svg_scatter", "labels of size " + std::to_string(y.rows()) + " or none",
                            "size " + std::to_string(labels.size()));
    static constexpr const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                              "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    std::map<std::int64_t, std::size_t> colour;
    for (auto l : labels) colour.emplace(l, 0);
    std::size_t next = 0;
    for (auto& [l, c] : colour) c = next++ % std::size(palette);

    float x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (y.rows() > 0) {
        x0 = y.col(0).minCoeff(), x1 = y.col(0).maxCoeff(), y0 = y.col(1).minCoeff(), y1 = y.col(1).maxCoeff();
    }
    const double sx = (o.width - 20) / std::max(1e-30, static_cast<double>(x1 - x0));
    const double sy = (o.height - 20) / std::max(1e-30, static_cast<double>(y1 - y0));
    const double s = std::min(sx, sy);
    std::ostringstream out;
    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width + 120 << "\" height=\"" << o.height
        << "\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!o.title.empty())
        out << "<text x=\"10\" y=\"16\" font-family=\"sans-serif\" font-size=\"14\">" << detail::xml_escape(o.title)
            << "</text>\n";
    for (index_t i = 0; i < y.rows(); ++i) {
        const double px = 10 + (y(i, 0) - x0) * s, py = o.height - 10 - (y(i, 1) - y0) * s; // y axis points up
        const char* fill = labels.empty() ? palette[0] : palette[colour[labels[static_cast<std::size_t>(i)]]];
        out << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"" << o.point_radius << "\" fill=\"" << fill
            << "\" fill-opacity=\"0.8\"/>\n";
    }
    int row = 0;
    for (const auto& [l, c] : colour) {
        const int ly = 20 + 18 * row++;
        out << "<circle cx=\"" << o.width + 15 << "\" cy=\"" << ly << "\" r=\"5\" fill=\"" << palette[c] << "\"/>"
            << "<text x=\"" << o.width + 26 << "\" y=\"" << ly + 4 << "\" font-family=\"sans-serif\" font-size=\"12\">"
            << l << "</text>\n";
    }
    out << "</svg>\n";
    return out.str();
}

/// Writes svg_scatter(y, labels, o) to path (io_error if the file cannot be written).
inline void write_svg_scatter(const std::string& path, const_matrix_ref<float> y,
                              std::span<const std::int64_t> labels = {}, const svg_scatter_options& o = {})
{
    std::ofstream f(path);
    if (!f) throw io_error(detail::describe("write_svg_scatter", "a writable file", "cannot open " + path));
    f << svg_scatter(y, labels, o);
    if (!f) throw io_error(detail::describe("write_svg_scatter", "a successful write", "a write error on " + path));
}

} // namespace dskit
