// tsne_embed: t-SNE of the rows of a CSV or .npy file, written as CSV (and optionally an SVG plot).
//
//   tsne_embed INPUT OUTPUT.csv [--perplexity P] [--dims 2|3] [--method auto|exact|bh|fft] [--seed S]
//              [--threads T] [--labels LABELS] [--svg PLOT.svg] [--quality 0|1]
//
// INPUT: .npy (float32/float64, [N, D]) or text with one point per line, values separated by commas or
// spaces (a first line that does not parse as numbers is taken as a header). LABELS: one integer per line;
// with labels the program also prints the 10-NN accuracy in the embedding. Example on the bundled digits:
//
//   tsne_embed examples/data/digits.csv digits_2d.csv --labels examples/data/digits_labels.csv --svg digits.svg
#include <dskit/io/npy.hpp>
#include <dskit/manifold/quality.hpp>
#include <dskit/manifold/svg_scatter.hpp>
#include <dskit/manifold/tsne.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<std::vector<double>> read_rows(const std::string& path)
{
    std::ifstream f(path);
    if (!f) throw dskit::io_error("tsne_embed: cannot open " + path);
    std::vector<std::vector<double>> rows;
    std::string line;
    bool first = true;
    while (std::getline(f, line)) {
        for (char& c : line)
            if (c == ',' || c == ';' || c == '\t') c = ' ';
        std::istringstream s(line);
        std::vector<double> row;
        std::string tok;
        bool ok = true;
        while (s >> tok) {
            char* end = nullptr;
            const double v = std::strtod(tok.c_str(), &end);
            if (end == tok.c_str() || *end != '\0') ok = false;
            row.push_back(v);
        }
        if (!ok && first && rows.empty()) { // header line
            first = false;
            continue;
        }
        first = false;
        if (!ok) throw dskit::format_error("tsne_embed: not a number in " + path + ": " + line);
        if (row.empty()) continue;
        if (!rows.empty() && row.size() != rows.front().size())
            throw dskit::format_error("tsne_embed: rows of different lengths in " + path);
        rows.push_back(std::move(row));
    }
    return rows;
}

dskit::matrix<float> read_matrix(const std::string& path)
{
    if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") return dskit::load_npy_matrix(path);
    const auto rows = read_rows(path);
    dskit::matrix<float> m(static_cast<dskit::index_t>(rows.size()),
                           rows.empty() ? 0 : static_cast<dskit::index_t>(rows.front().size()));
    for (dskit::index_t i = 0; i < m.rows(); ++i)
        for (dskit::index_t j = 0; j < m.cols(); ++j)
            m(i, j) = static_cast<float>(rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
    return m;
}

int usage()
{
    std::cerr << "usage: tsne_embed INPUT OUTPUT.csv [--perplexity P] [--dims 2|3] [--method auto|exact|bh|fft]\n"
                 "                  [--seed S] [--threads T] [--labels LABELS] [--svg PLOT.svg] [--quality 0|1]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) return usage();
    const std::string input = argv[1], output = argv[2];
    std::string labels_path, svg_path;
    bool quality = true;
    dskit::tsne_options opt;
    try {
        for (int a = 3; a < argc; ++a) {
            const std::string flag = argv[a];
            if (a + 1 >= argc) return usage();
            const std::string value = argv[++a];
            if (flag == "--perplexity")
                opt.perplexity = std::stod(value);
            else if (flag == "--dims")
                opt.dims = std::stoi(value);
            else if (flag == "--seed")
                opt.seed = std::stoull(value);
            else if (flag == "--threads")
                dskit::set_num_threads(std::stoi(value));
            else if (flag == "--labels")
                labels_path = value;
            else if (flag == "--svg")
                svg_path = value;
            else if (flag == "--quality") // 0: skip trustworthiness and k-NN accuracy (benchmark scripts)
                quality = value != "0";
            else if (flag == "--method") {
                if (value == "auto")
                    opt.method = dskit::tsne_method::automatic;
                else if (value == "exact")
                    opt.method = dskit::tsne_method::exact;
                else if (value == "bh")
                    opt.method = dskit::tsne_method::barnes_hut;
                else if (value == "fft")
                    opt.method = dskit::tsne_method::fft;
                else
                    return usage();
            } else {
                return usage();
            }
        }
        const dskit::matrix<float> x = read_matrix(input);
        std::vector<std::int64_t> labels;
        if (!labels_path.empty()) {
            for (const auto& row : read_rows(labels_path)) labels.push_back(static_cast<std::int64_t>(row.at(0)));
            if (static_cast<dskit::index_t>(labels.size()) != x.rows())
                throw dskit::shape_error("tsne_embed: " + std::to_string(labels.size()) + " labels for " +
                                         std::to_string(x.rows()) + " points");
        }
        std::printf("%lld points x %lld dims, perplexity %g, %d threads\n", static_cast<long long>(x.rows()),
                    static_cast<long long>(x.cols()), opt.perplexity, dskit::max_threads());
        opt.callback = [](const dskit::tsne_progress& p) {
            std::printf("iteration %4d  KL %.4f  %.2f s\n", p.iteration, p.kl, p.elapsed_seconds);
            return true;
        };
        const dskit::tsne_result r = dskit::tsne(x, opt);
        std::printf("done: %d iterations, KL %.4f, %.3f s (%s)\n", r.iterations, r.kl, r.elapsed_seconds,
                    r.method == dskit::tsne_method::exact ? "exact"
                    : r.method == dskit::tsne_method::fft ? "FFT interpolation"
                                                          : "Barnes-Hut");
        if (quality && x.rows() > 20 && x.rows() <= 50000)
            std::printf("trustworthiness@10 %.4f\n", dskit::trustworthiness(x, r.embedding, 10));
        if (quality && !labels.empty())
            std::printf("10-NN accuracy %.4f\n", dskit::knn_accuracy(r.embedding, labels, 10));

        std::ofstream out(output);
        if (!out) throw dskit::io_error("tsne_embed: cannot write " + output);
        for (dskit::index_t i = 0; i < r.embedding.rows(); ++i) {
            for (dskit::index_t j = 0; j < r.embedding.cols(); ++j) out << (j ? "," : "") << r.embedding(i, j);
            out << '\n';
        }
        if (!svg_path.empty()) {
            dskit::svg_scatter_options so;
            so.title = "t-SNE of " + input;
            dskit::write_svg_scatter(svg_path, r.embedding, labels, so);
        }
    } catch (const std::invalid_argument&) {
        std::cerr << "tsne_embed: an option's value is not a number\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    return 0;
}
