// dskit_attention_rss: peak memory of one fused attention forward on a long sequence.
//
//   dskit_attention_rss [N] [d] [H] [causal]     (defaults: 32768 64 8 0)
//
// Allocates and fills q, k, v and out ([N, H d] floats each), then runs dskit::attention once and
// reports the process's peak resident set (VmHWM) against the resident set just before the call.
// The difference is what the kernel itself needed: its packed copy of K and V plus per-thread tiles;
// the N x N score matrix (4 GiB per head at N = 32768) is never stored.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <dskit/attention/flash.hpp>
#include <dskit/core/parallel.hpp>

namespace {

/// A field of /proc/self/status in KiB (0 where the file does not exist).
long status_kib(const std::string& field)
{
    std::ifstream f("/proc/self/status");
    std::string key;
    long value = 0;
    while (f >> key) {
        if (key == field + ":") {
            f >> value;
            return value;
        }
        f.ignore(1 << 12, '\n');
    }
    return 0;
}

void fill(dskit::matrix<float>& m, unsigned seed)
{
    // A cheap deterministic fill (an LCG): the values do not matter, only that every page is touched.
    unsigned x = seed;
    for (dskit::index_t i = 0; i < m.size(); ++i) {
        x = x * 1664525u + 1013904223u;
        m.data()[i] = static_cast<float>(x >> 8) * 0x1.0p-24f - 0.5f;
    }
}

} // namespace

int main(int argc, char** argv)
{
    const dskit::index_t n = argc > 1 ? std::atol(argv[1]) : 32768, d = argc > 2 ? std::atol(argv[2]) : 64,
                         h = argc > 3 ? std::atol(argv[3]) : 8;
    const bool causal = argc > 4 && std::atoi(argv[4]) != 0;
    dskit::matrix<float> q(n, h * d), k(n, h * d), v(n, h * d), out(n, h * d);
    fill(q, 1);
    fill(k, 2);
    fill(v, 3);
    out.setZero();
    const double mib = 1.0 / 1024.0;
    const double tensors = 4.0 * static_cast<double>(q.size()) * sizeof(float) / (1024.0 * 1024.0);
    const long before = status_kib("VmRSS");
    const auto t0 = std::chrono::steady_clock::now();
    if (causal)
        dskit::attention(q, k, v, h, h, out, dskit::attention_mods::causal{});
    else
        dskit::attention(q, k, v, h, h, out);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long peak = status_kib("VmHWM");
    std::printf("attention N=%ld d=%ld H=%ld%s on %d threads: %.2f s\n", static_cast<long>(n), static_cast<long>(d),
                static_cast<long>(h), causal ? " causal" : "", dskit::max_threads(), s);
    std::printf("inputs + output: %.1f MiB; resident before the call: %.1f MiB; peak resident: %.1f MiB\n", tensors,
                before * mib, peak * mib);
    std::printf("peak - resident before the call: %.1f MiB (the limit is 64 MiB over inputs + outputs)\n",
                (peak - before) * mib);
    std::printf("checksum %.6g\n", static_cast<double>(out.sum()));
    return 0;
}
