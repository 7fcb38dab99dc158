# Shared by the smoke scripts (sourced): a scratch folder, quiet one-thread runs, and checks.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
common=(--threads 1 --log-level warn)

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_files() { for f in "$@"; do [ -s "$f" ] || fail "missing or empty: $f"; done; }
# expect_error "<text in stderr>" command...: non-zero exit, one line on stderr containing the text
expect_error() {
  local want=$1; shift
  if "$@" > "$work/out" 2> "$work/err"; then fail "expected an error: $*"; fi
  grep -qF -- "$want" "$work/err" || fail "stderr lacks '$want': $(cat "$work/err")"
  [ "$(wc -l < "$work/err")" -eq 1 ] || fail "stderr is not one line: $(cat "$work/err")"
}
