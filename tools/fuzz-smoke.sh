#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz, nightly) and runs targets briefly from their stored
# corpora (fuzz/corpus/<target>), one libFuzzer process at a time. Fails on the first crash,
# leak, timeout or build error; the failing input is left in fuzz/artifacts/<target>/.
#
#   tools/fuzz-smoke.sh            FUZZ_PER_RUN targets (default 6), FUZZ_SECONDS each (default 20)
#   tools/fuzz-smoke.sh wire http  only these targets
#
# Every target is built (so none stops compiling), but to keep CI short only FUZZ_PER_RUN of
# them run, a window that moves every hour (FUZZ_ROTATION overrides the hour), so successive CI
# runs cover them all. FUZZ_PER_RUN=0 runs every target.
#
# Needs the nightly toolchain and cargo-fuzz (tools/ci-setup.sh installs cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
per_run="${FUZZ_PER_RUN:-6}"
rotation="${FUZZ_ROTATION:-$(($(date +%s) / 3600))}"
command -v cargo-fuzz > /dev/null || { echo "cargo-fuzz is not installed (tools/ci-setup.sh installs it)" >&2; exit 1; }
rustup run nightly cargo --version > /dev/null || { echo "the nightly toolchain is missing" >&2; exit 1; }

mapfile -t all < <(cargo +nightly fuzz list)
[ "${#all[@]}" -gt 0 ] || { echo "no fuzz targets found" >&2; exit 1; }
if [ "$#" -gt 0 ]; then
    targets=("$@")
elif [ "$per_run" -eq 0 ] || [ "$per_run" -ge "${#all[@]}" ]; then
    targets=("${all[@]}")
else
    targets=()
    for ((i = 0; i < per_run; i++)); do
        targets+=("${all[$(((rotation * per_run + i) % ${#all[@]}))]}")
    done
fi

echo "== building ${#all[@]} fuzz targets"
cargo +nightly fuzz build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== running ${#targets[@]} of ${#all[@]} for ${seconds}s each: ${targets[*]}"
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    [ -d "$corpus" ] || { echo "no stored corpus for $t ($corpus)" >&2; exit 1; }
    # New inputs go to a scratch directory: the stored corpus stays as committed.
    mkdir -p "$work/$t"
    echo "== fuzz $t from $corpus ($(find "$corpus" -type f | wc -l) inputs)"
    if ! cargo +nightly fuzz run "$t" "$work/$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 > "$work/$t.log" 2>&1; then
        tail -n 60 "$work/$t.log" >&2
        echo "fuzz target $t failed" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "$work/$t.log" | tr '\n' ' '
    echo
done
echo "== fuzz smoke: ${#targets[@]} targets clean"
