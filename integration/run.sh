#!/usr/bin/env bash
# Runs s3seal's whole test suite on this machine, the same way CI does:
#
#   1. installs the test bed (MinIO, versitygw, local-kms, Pebble, clients)
#      with integration/testbed/install.sh, reusing what is already installed;
#   2. checks formatting (gofmt -l), go vet and staticcheck;
#   3. runs the packages with concurrency under the race detector;
#   4. runs every test, integration tests included, against real servers;
#   5. fuzzes every Fuzz* target for a short, bounded time.
#
# It runs every step even after one fails, prints a summary (listing every
# skipped test with its reason: a skip is not a pass), and exits non-zero if
# any step failed.
#
#   S3SEAL_SHORT=1      pass -short to go test and skip the multi-GiB memory test
#   S3SEAL_FUZZTIME=D   fuzzing time per target (default 10s; 0 skips fuzzing)
#   S3SEAL_TESTBED_DIR  cache root for the test bed (see install.sh)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${S3SEAL_FUZZTIME:-10s}"
short=()
if [[ "${S3SEAL_SHORT:-}" == 1 ]]; then short=(-short); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/s3seal-run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

results=()
failures=0
banner() { printf '\n==> %s\n' "$*"; }

# step NAME FUNCTION: runs FUNCTION, records PASS/FAIL and its duration.
step() {
  local name="$1" start=$SECONDS rc=0
  banner "$name"
  "$2" || rc=$?
  if ((rc == 0)); then
    results+=("PASS  $name ($((SECONDS - start))s)")
  else
    results+=("FAIL  $name ($((SECONDS - start))s, exit $rc)")
    failures=$((failures + 1))
  fi
}

install_testbed() {
  local bin
  bin="$(./integration/testbed/install.sh)" || return 1
  export S3SEAL_TESTBED_BIN="$bin"
  echo "test bed binaries: $S3SEAL_TESTBED_BIN"
}

check_gofmt() {
  local out
  out="$(gofmt -l .)" || return 1
  if [[ -n "$out" ]]; then
    echo "gofmt -l reports unformatted files:"
    echo "$out"
    return 1
  fi
  echo "gofmt: clean"
}

check_vet() {
  local rc=0
  go vet ./... || rc=1
  (cd integration/testbed/localkms && go vet ./...) || rc=1
  (cd deploy/check && go vet ./...) || rc=1
  ((rc == 0)) && echo "go vet: clean"
  return $rc
}

check_staticcheck() {
  "$S3SEAL_TESTBED_BIN/staticcheck" ./... && echo "staticcheck: clean"
}

race_tests() {
  local pkgs=() d
  for d in proxy crypto; do
    if [[ -d "$d" ]]; then pkgs+=("./$d/..."); fi
  done
  if ((${#pkgs[@]} == 0)); then
    echo "no proxy/ or crypto/ packages"
    return 0
  fi
  go test -race -count=1 ${short[@]+"${short[@]}"} "${pkgs[@]}"
}

# The full suite runs verbosely into a log so that the summary can count
# tests; the console shows it without the RUN/PAUSE/CONT chatter.
suite_log="$work/suite.log"
full_suite() {
  local rc_file="$work/suite.rc"
  echo 1 >"$rc_file"
  (
    set +e
    large=1
    if [[ "${S3SEAL_SHORT:-}" == 1 ]]; then large=0; fi
    S3SEAL_LARGE=$large S3SEAL_INTEGRATION=1 go test -v -count=1 -timeout 40m ${short[@]+"${short[@]}"} ./... 2>&1
    echo "$?" >"$rc_file"
  ) | tee "$suite_log" | awk '!/^ *=== (RUN|PAUSE|CONT|NAME)/ && !/^ +--- PASS/'
  return "$(cat "$rc_file")"
}

# fuzz_targets prints "DIR NAME" for every Fuzz function in the main
# module's test files (nested modules are not part of ./...).
fuzz_targets() {
  local dir f rel
  go list -e -f '{{.Dir}}' ./... | while read -r dir; do
    rel=".${dir#"$PWD"}"
    for f in "$dir"/*_test.go; do
      [[ -e "$f" ]] || continue
      sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' "$f" | while read -r name; do
        echo "$rel $name"
      done
    done
  done
}

# fuzz_one fuzzes one target. Go 1.26's fuzzing coordinator can report a
# bare "context deadline exceeded" as a failure when -fuzztime ends while a
# worker is busy (golang/go#75804, fixed in Go 1.27); such a run found
# nothing and wrote no input, so it is run once more. Any other failure, and
# that one twice, fails.
fuzz_one() {
  local pkg="$1" name="$2" out attempt
  out="$(mktemp)"
  for attempt in 1 2; do
    if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$out"; then
      rm -f "$out"
      return 0
    fi
    if [[ $attempt == 1 ]] && grep -q 'context deadline exceeded' "$out" &&
      ! grep -q -e 'Failing input written' -e 'panic:' -e '_test\.go:[0-9]*:' "$out"; then
      echo "fuzz: $name stopped on the fuzzing engine's deadline race (golang/go#75804), no failing input; running it again"
      continue
    fi
    break
  done
  rm -f "$out"
  return 1
}

fuzz() {
  if [[ "$fuzztime" == 0 || "$fuzztime" == 0s ]]; then
    echo "fuzzing skipped (S3SEAL_FUZZTIME=$fuzztime)"
    return 0
  fi
  local targets rc=0 n=0 pkg name
  targets="$(fuzz_targets)" || return 1
  if [[ -z "$targets" ]]; then
    echo "no Fuzz targets found"
    return 0
  fi
  while read -r pkg name; do
    n=$((n + 1))
    echo "--- fuzz $name in $pkg for $fuzztime"
    if ! fuzz_one "$pkg" "$name"; then
      echo "FAIL: fuzz $name in $pkg"
      rc=1
    fi
  done <<<"$targets"
  echo "fuzzed $n targets"
  return $rc
}

banner "s3seal test suite: $(go version)${CI:+ (CI)}"
start_all=$SECONDS
step "install test bed" install_testbed
if ((failures > 0)); then
  echo "run.sh: the test bed could not be installed; stopping" >&2
  exit 1
fi
step "gofmt" check_gofmt
step "go vet" check_vet
step "staticcheck" check_staticcheck
step "race tests (proxy, crypto)" race_tests
step "full suite (S3SEAL_INTEGRATION=1)" full_suite
step "fuzzing (${fuzztime} per target)" fuzz

# Tests (subtests included) from the full suite; a package that failed
# without a failing test (build error, TestMain) counts as one failure.
read -r passed failed skipped < <(awk '
  /^ *--- PASS/ { p++ }
  /^ *--- SKIP/ { s++ }
  /^ *--- FAIL/ { f++; pkgf++ }
  /^(ok|\?) / { pkgf = 0 }
  /^FAIL\t/ { if (pkgf == 0) f++; pkgf = 0 }
  END { printf "%d %d %d\n", p, f, s }' "$suite_log")

# Skipped tests with their reasons: a skip is not a pass, so each one is
# listed (the image test skips only where podman cannot run containers).
skips="$(awk '
  /^ *--- SKIP: / { n = $3; m = prev; sub(/^ +/, "", m); printf "SKIP  %s: %s\n", n, m }
  !/^ *--- / && !/^=== / && NF { prev = $0 }' "$suite_log")"

banner "summary ($((SECONDS - start_all))s)"
printf '%s\n' "${results[@]}"
if [[ -n "$skips" ]]; then
  echo
  echo "skipped tests (not counted as passed):"
  echo "$skips"
fi
if grep -qE '^(FAIL|panic:|--- FAIL)' "$suite_log"; then
  echo
  echo "failing tests and packages:"
  grep -E '^ *--- FAIL|^FAIL\s|^panic:' "$suite_log" || true
fi
echo
echo "steps: $((${#results[@]} - failures)) passed, $failures failed"
echo "tests: $passed passed, $failed failed, $skipped skipped"
if ((failures > 0)); then
  exit 1
fi
