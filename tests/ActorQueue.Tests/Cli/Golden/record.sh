#!/usr/bin/env bash
# Records GNU parallel's behaviour on every case of cases.tsv into NAME.out (stdout, then "exit=N"), and parallel's
# version into VERSION. Run after changing a case: bash tests/ActorQueue.Tests/Cli/Golden/record.sh (needs parallel).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
parallel --version | head -1 > "$here/VERSION"
export P="parallel --will-cite"
while IFS=$'\t' read -r name script; do
  case "$name" in ''|'#'*) continue ;; esac
  work=$(mktemp -d)
  (cd "$work" && sh "$here/fixtures.sh")
  set +e
  out=$(cd "$work" && sh -c "$script" 2>/dev/null </dev/null; echo "exit=$?")
  set -e
  printf '%s\n' "$out" > "$here/$name.out"
  rm -rf "$work"
done < "$here/cases.tsv"
echo "recorded $(grep -vc '^#' "$here/cases.tsv") cases with $(cat "$here/VERSION")"
