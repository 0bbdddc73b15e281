// Batched complex FFTs for the FFT-interpolation t-SNE gradient: one length-n transform over each of w
// interleaved sequences (element i of sequence b at i * w + b, real and imaginary parts in separate arrays).
//
// Self-sorting (Stockham) decimation in frequency, mixed radix: 4, 2 and 3 have their own butterflies, any other
// prime goes through a plain O(r²) one. Every butterfly runs over the w sequences at once, so its inner loop is
// contiguous (s w values at stride-s stages) and vectorises; the 2-D grid transforms copy small blocks of rows
// into such a buffer, which stays in cache. Eigen's FFT module (kissfft, one sequence at a time in
// complex<double>) was the first choice: the t-SNE gradient was then FFT-bound and 2-3x slower.
//
// The forward transform is X_k = sum_j x_j exp(-2 pi i jk / n); the inverse uses +i and is not scaled.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "dskit/core/matrix.hpp"

namespace dskit::detail {

class batch_fft_plan {
public:
    batch_fft_plan() = default;

    explicit batch_fft_plan(index_t n) : n_(n)
    {
        std::vector<index_t> radices;
        index_t rest = n;
        while (rest % 4 == 0) radices.push_back(4), rest /= 4;
        while (rest % 2 == 0) radices.push_back(2), rest /= 2;
        for (index_t f = 3; rest > 1; f += 2)
            while (rest % f == 0) radices.push_back(f), rest /= f;
        index_t len = n, stride = 1;
        for (index_t r : radices) {
            stage st{r, len, stride, tw_re_.size(), roots_re_.size()};
            const index_t m = len / r;
            // Twiddles w^(pk), w = exp(-2 pi i / len), for p < m and k in [1, r).
            for (index_t p = 0; p < m; ++p)
                for (index_t k = 1; k < r; ++k) {
                    const double a = -2.0 * std::numbers::pi * static_cast<double>(p * k) / static_cast<double>(len);
                    tw_re_.push_back(std::cos(a));
                    tw_im_.push_back(std::sin(a));
                }
            if (r > 4) // roots of unity for the generic butterfly
                for (index_t k = 0; k < r; ++k) {
                    const double a = -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(r);
                    roots_re_.push_back(std::cos(a));
                    roots_im_.push_back(std::sin(a));
                }
            stages_.push_back(st);
            len = m;
            stride *= r;
        }
    }

    [[nodiscard]] index_t size() const { return n_; }

    /// Transforms the w sequences in (re, im) in place; work_re / work_im: scratch of n * w values each.
    void run(double* re, double* im, index_t w, bool inverse, double* work_re, double* work_im) const
    {
        double *xr = re, *xi = im, *yr = work_re, *yi = work_im;
        const double sign = inverse ? -1.0 : 1.0; // conjugates every root of unity
        for (const stage& st : stages_) {
            const index_t m = st.n / st.radix, sw = st.s * w;
            for (index_t p = 0; p < m; ++p) {
                const double* twr = tw_re_.data() + st.tw + static_cast<std::size_t>(p * (st.radix - 1));
                const double* twi = tw_im_.data() + st.tw + static_cast<std::size_t>(p * (st.radix - 1));
                const index_t in0 = st.s * p * w, in_step = st.s * m * w, out0 = st.s * st.radix * p * w;
                switch (st.radix) {
                case 2:
                    radix2(xr + in0, xi + in0, in_step, yr + out0, yi + out0, sw, twr, twi, sign);
                    break;
                case 3:
                    radix3(xr + in0, xi + in0, in_step, yr + out0, yi + out0, sw, twr, twi, sign);
                    break;
                case 4:
                    radix4(xr + in0, xi + in0, in_step, yr + out0, yi + out0, sw, twr, twi, sign);
                    break;
                default:
                    generic(st, xr + in0, xi + in0, in_step, yr + out0, yi + out0, sw, twr, twi, sign);
                }
            }
            std::swap(xr, yr);
            std::swap(xi, yi);
        }
        if (xr != re) {
            std::copy_n(xr, n_ * w, re);
            std::copy_n(xi, n_ * w, im);
        }
    }

private:
    struct stage {
        index_t radix, n, s;  ///< radix, length of the sub-transforms at this stage, their stride
        std::size_t tw, root; ///< offsets into the twiddle and root tables
    };

    // Butterflies over t in [0, sw): inputs x + j * step, outputs y + k * sw, then output k times twiddle k.
    static void radix2(const double* xr, const double* xi, index_t step, double* yr, double* yi, index_t sw,
                       const double* twr, const double* twi, double sign)
    {
        const double w1r = twr[0], w1i = sign * twi[0];
        for (index_t t = 0; t < sw; ++t) {
            const double ar = xr[t], ai = xi[t], br = xr[t + step], bi = xi[t + step];
            const double dr = ar - br, di = ai - bi;
            yr[t] = ar + br;
            yi[t] = ai + bi;
            yr[t + sw] = dr * w1r - di * w1i;
            yi[t + sw] = dr * w1i + di * w1r;
        }
    }

    static void radix3(const double* xr, const double* xi, index_t step, double* yr, double* yi, index_t sw,
                       const double* twr, const double* twi, double sign)
    {
        const double w1r = twr[0], w1i = sign * twi[0], w2r = twr[1], w2i = sign * twi[1];
        const double h = sign * 0.8660254037844386467637; // sin(2 pi / 3), signed by direction
        for (index_t t = 0; t < sw; ++t) {
            const double a0r = xr[t], a0i = xi[t], a1r = xr[t + step], a1i = xi[t + step];
            const double a2r = xr[t + 2 * step], a2i = xi[t + 2 * step];
            const double sr = a1r + a2r, si = a1i + a2i;
            const double mr = a0r - 0.5 * sr, mi = a0i - 0.5 * si;
            const double dr = h * (a1r - a2r), di = h * (a1i - a2i);
            // y1 = m - i d, y2 = m + i d (forward; the sign of h turns them round for the inverse)
            const double y1r = mr + di, y1i = mi - dr, y2r = mr - di, y2i = mi + dr;
            yr[t] = a0r + sr;
            yi[t] = a0i + si;
            yr[t + sw] = y1r * w1r - y1i * w1i;
            yi[t + sw] = y1r * w1i + y1i * w1r;
            yr[t + 2 * sw] = y2r * w2r - y2i * w2i;
            yi[t + 2 * sw] = y2r * w2i + y2i * w2r;
        }
    }

    static void radix4(const double* xr, const double* xi, index_t step, double* yr, double* yi, index_t sw,
                       const double* twr, const double* twi, double sign)
    {
        const double w1r = twr[0], w1i = sign * twi[0], w2r = twr[1], w2i = sign * twi[1];
        const double w3r = twr[2], w3i = sign * twi[2];
        for (index_t t = 0; t < sw; ++t) {
            const double a0r = xr[t], a0i = xi[t], a1r = xr[t + step], a1i = xi[t + step];
            const double a2r = xr[t + 2 * step], a2i = xi[t + 2 * step];
            const double a3r = xr[t + 3 * step], a3i = xi[t + 3 * step];
            const double t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
            const double t2r = a1r + a3r, t2i = a1i + a3i;
            // t3 = -i (a1 - a3) forward, +i inverse
            const double t3r = sign * (a1i - a3i), t3i = -sign * (a1r - a3r);
            const double y1r = t1r + t3r, y1i = t1i + t3i, y2r = t0r - t2r, y2i = t0i - t2i;
            const double y3r = t1r - t3r, y3i = t1i - t3i;
            yr[t] = t0r + t2r;
            yi[t] = t0i + t2i;
            yr[t + sw] = y1r * w1r - y1i * w1i;
            yi[t + sw] = y1r * w1i + y1i * w1r;
            yr[t + 2 * sw] = y2r * w2r - y2i * w2i;
            yi[t + 2 * sw] = y2r * w2i + y2i * w2r;
            yr[t + 3 * sw] = y3r * w3r - y3i * w3i;
            yi[t + 3 * sw] = y3r * w3i + y3i * w3r;
        }
    }

    void generic(const stage& st, const double* xr, const double* xi, index_t step, double* yr, double* yi, index_t sw,
                 const double* twr, const double* twi, double sign) const
    {
        const index_t r = st.radix;
        const double* rr = roots_re_.data() + st.root;
        const double* ri = roots_im_.data() + st.root;
        for (index_t k = 0; k < r; ++k) {
            double* outr = yr + k * sw;
            double* outi = yi + k * sw;
            std::fill_n(outr, sw, 0.0);
            std::fill_n(outi, sw, 0.0);
            for (index_t j = 0; j < r; ++j) {
                const index_t e = (j * k) % r;
                const double cr = rr[e], ci = sign * ri[e];
                for (index_t t = 0; t < sw; ++t) {
                    const double ar = xr[t + j * step], ai = xi[t + j * step];
                    outr[t] += ar * cr - ai * ci;
                    outi[t] += ar * ci + ai * cr;
                }
            }
            if (k > 0) {
                const double w_r = twr[k - 1], w_i = sign * twi[k - 1];
                for (index_t t = 0; t < sw; ++t) {
                    const double vr = outr[t], vi = outi[t];
                    outr[t] = vr * w_r - vi * w_i;
                    outi[t] = vr * w_i + vi * w_r;
                }
            }
        }
    }

    index_t n_ = 0;
    std::vector<stage> stages_;
    std::vector<double> tw_re_, tw_im_, roots_re_, roots_im_;
};

} // namespace dskit::detail
