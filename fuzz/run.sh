#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]
#
# Builds the fuzz targets (cargo-fuzz, libFuzzer, nightly) and runs each
# for SECONDS (default 30) on a fresh copy of its committed seed corpus,
# one after another (JOBS=N: N at a time). Prints one line per target:
#
#   target=NAME secs=S execs=N exec_per_s=N crashes=N new_units=N peak_rss_mb=N
#
# and writes them to target/fuzz-work/summary.tsv. Exits 1 if any target
# crashed (panic, sanitizer report, timeout, OOM), printing the kept input
# and how to reproduce it. Everything it writes is under target/ (ignored):
#
#   target/fuzz-build/               the instrumented build (-TOOLCHAIN-SANITIZER
#                                    unless nightly with AddressSanitizer)
#   target/fuzz-work/corpus/NAME/    the working corpus (seeds + finds)
#   target/fuzz-work/artifacts/NAME/ crash inputs
#   target/fuzz-work/logs/NAME.log   libFuzzer's output
#
# Installs what it needs when missing: the nightly toolchain (rustup) and
# cargo-fuzz (cargo install --locked). Environment: JOBS (default 1),
# FUZZ_TOOLCHAIN (default nightly, stable when there is no nightly),
# FUZZ_SANITIZER (address on nightly, none on stable), FUZZ_ARGS (extra
# libFuzzer flags).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
all=(gateway_http baseline_front_door chain_file descriptor txn)

secs="${1:-30}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*)
  echo "usage: fuzz/run.sh [SECONDS] [TARGET...]  (targets: ${all[*]})" >&2
  exit 2
  ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || {
    echo "unknown target $t (targets: ${all[*]})" >&2
    exit 2
  }
done
# Nightly with AddressSanitizer when the machine has nightly; otherwise the
# stable toolchain with libFuzzer's coverage guidance and no sanitizer
# (AddressSanitizer needs nightly's -Zsanitizer) - said loudly, not hidden.
if [ -z "${FUZZ_TOOLCHAIN:-}" ] && ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain on this machine: building with stable and no sanitizer (panics, hangs and OOMs are still found; out-of-bounds reads in unsafe code only if they fault)" >&2
  FUZZ_TOOLCHAIN=stable
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if [ "$toolchain" = nightly ]; then sanitizer="${FUZZ_SANITIZER:-address}"; else sanitizer="${FUZZ_SANITIZER:-none}"; fi
jobs="${JOBS:-1}"
build_dir="$root/target/fuzz-build"
[ "$toolchain-$sanitizer" = nightly-address ] || build_dir="$build_dir-$toolchain-$sanitizer"
work="$root/target/fuzz-work"

# Tools, installed once.
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "installing the $toolchain toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The build (one for all targets when all are asked for).
host="$(rustup run "$toolchain" rustc -vV | sed -n 's/^host: //p')"
bin_dir="$build_dir/$host/release"
start=$(date +%s)
cd "$here"
if [ ${#targets[@]} -eq ${#all[@]} ]; then
  cargo +"$toolchain" fuzz build -s "$sanitizer" --target-dir "$build_dir"
else
  for t in "${targets[@]}"; do cargo +"$toolchain" fuzz build -s "$sanitizer" --target-dir "$build_dir" "$t"; done
fi
echo "built in $(($(date +%s) - start)) s ($toolchain, sanitizer: $sanitizer)"

dict_for() {
  case "$1" in
    gateway_http | baseline_front_door) echo "$here/dict/http.dict" ;;
    chain_file) echo "$here/dict/chain_file.dict" ;;
  esac
}

# Per-target libFuzzer options. descriptor: streams of up to 1 KiB (64
# frames) show every decoder behaviour; the default 4 KiB only slows it
# (its check feeds each stream nine ways, byte by byte among them).
opts_for() {
  case "$1" in
    descriptor) echo "-max_len=1024" ;;
  esac
}

final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

# Runs target $1 and writes its result line to $work/results/$1.
run_one() {
  local t="$1" corpus="$work/corpus/$1" art="$work/artifacts/$1" log="$work/logs/$1.log" dict opts rc=0
  rm -rf "$corpus" "$art"
  mkdir -p "$corpus" "$art" "$work/logs" "$work/results"
  cp "$here/corpus/$t/"* "$corpus/"
  dict="$(dict_for "$t")"
  opts="$(opts_for "$t")"
  # -timeout: an input taking 10 s is a hang (every target's iteration
  # takes milliseconds; the HTTP ones run on a paused clock).
  # shellcheck disable=SC2086
  "$bin_dir/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -artifact_prefix="$art/" \
    ${dict:+-dict="$dict"} $opts ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
  local execs eps new rss crashes
  execs="$(final_stat number_of_executed_units "$log")"
  eps="$(final_stat average_exec_per_sec "$log")"
  new="$(final_stat new_units_added "$log")"
  rss="$(final_stat peak_rss_mb "$log")"
  crashes="$(find "$art" -type f | wc -l)"
  # A failure that left no input (it died before fuzzing) counts too.
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
  printf 'target=%s secs=%s execs=%s exec_per_s=%s crashes=%s new_units=%s peak_rss_mb=%s\n' \
    "$t" "$secs" "${execs:-0}" "${eps:-0}" "$crashes" "${new:-0}" "${rss:-0}" >"$work/results/$t"
}

mkdir -p "$work/results"
rm -f "$work/results/"*
running=0
for t in "${targets[@]}"; do
  echo "fuzzing $t for $secs s"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

summary="$work/summary.tsv"
printf 'target\tsecs\texecs\texec_per_s\tcrashes\tnew_units\tpeak_rss_mb\n' >"$summary"
failed=0
for t in "${targets[@]}"; do
  line="$(cat "$work/results/$t")"
  echo "$line"
  # key=value pairs -> one TSV row
  tr ' ' '\n' <<<"$line" | cut -d= -f2 | paste -sd '\t' >>"$summary"
  case "$line" in *" crashes=0 "*) ;; *)
    failed=1
    for a in "$work/artifacts/$t/"*; do
      [ -e "$a" ] || continue
      echo "  $t crashed on $a"
      echo "  reproduce: $bin_dir/$t $a   (or: cd fuzz && cargo +$toolchain fuzz run --target-dir $build_dir $t $a)"
    done
    echo "  log: $work/logs/$t.log"
    ;;
  esac
done
echo "summary: $summary"
exit "$failed"
