#!/usr/bin/env bash
# Builds dskit's libFuzzer targets (tests/fuzz/fuzz_safetensors.cpp, tests/fuzz/fuzz_npy.cpp) with clang++,
# ASan and UBSan into build/fuzz/, seeds each corpus with the committed fixtures in tests/fixtures/io/,
# and runs each target for ${DSKIT_FUZZ_SECONDS:-15} seconds. Prints one summary line per target and exits
# non-zero if a target finds a crash, a sanitizer report or an unexpected exception (the input is kept
# in build/fuzz/artifacts_<target>/; reproduce with build/fuzz/fuzz_<target> <file>).
#
#   scripts/fuzz.sh                       # 15 s per target
#   DSKIT_FUZZ_SECONDS=300 scripts/fuzz.sh
#   CXX_FUZZ=clang++-14 scripts/fuzz.sh   # pick the compiler (default clang++)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/build/fuzz"
seconds="${DSKIT_FUZZ_SECONDS:-15}"
cxx="${CXX_FUZZ:-clang++}"

if ! command -v "${cxx}" >/dev/null 2>&1; then
    echo "fuzz.sh: ${cxx} not found; libFuzzer needs clang" >&2
    exit 2
fi
eigen_inc="$(pkg-config --cflags-only-I eigen3 2>/dev/null || true)"
[[ -n "${eigen_inc}" ]] || eigen_inc="-I/usr/include/eigen3"

mkdir -p "${out}"
# Tokens of each format, so the fuzzer reaches past the syntax checks quickly.
cat >"${out}/safetensors.dict" <<'DICT'
"{"
"}"
"\"dtype\":"
"\"shape\":"
"\"data_offsets\":"
"\"__metadata__\":"
"\"F32\""
"\"F16\""
"\"BF16\""
"\"F64\""
"\"I8\""
"\"U8\""
"\"I32\""
"\"BOOL\""
"\"F8_E4M3\""
"\"F8_E5M2\""
"[0,0]"
"[]"
DICT
cat >"${out}/npy.dict" <<'DICT'
"\x93NUMPY\x01\x00"
"\x93NUMPY\x02\x00"
"'descr':"
"'fortran_order':"
"'shape':"
"True"
"False"
"'<f4'"
"'>f8'"
"'|b1'"
"'<f2'"
"'|u1'"
"(0,)"
"()"
DICT

status=0
for target in safetensors npy; do
    bin="${out}/fuzz_${target}"
    # shellcheck disable=SC2086  # eigen_inc may hold several flags
    "${cxx}" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"${root}/include" ${eigen_inc} "${root}/tests/fuzz/fuzz_${target}.cpp" -o "${bin}"

    corpus="${out}/corpus_${target}"
    artifacts="${out}/artifacts_${target}/"
    log="${out}/fuzz_${target}.log"
    mkdir -p "${corpus}" "${artifacts}"
    ext="${target}"
    cp "${root}"/tests/fixtures/io/*."${ext}" "${corpus}/"

    if "${bin}" -max_total_time="${seconds}" -dict="${out}/${target}.dict" -artifact_prefix="${artifacts}" \
        -print_final_stats=1 -rss_limit_mb=2048 "${corpus}" >"${log}" 2>&1; then
        runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "${log}" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz_${target}: ok, ${runs} inputs in ${seconds} s, corpus of $(find "${corpus}" -type f | wc -l) files"
    else
        echo "fuzz_${target}: FINDING, see ${log} and ${artifacts}"
        grep -E 'ERROR|runtime error|terminate|SUMMARY|Test unit written' "${log}" | head -n 10 || true
        status=1
    fi
done
exit "${status}"
