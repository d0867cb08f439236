#!/usr/bin/env bash
# Lists every file of the repository that still refers to the specification
# and measurement files the project started from, which are not part of the
# repository: ../shared/..., shared/SPEC..., "SPEC §n", SPEC.md, MEASURED.md,
# or the word SPEC at all ("SPEC invariant 7", a reference broken over two
# lines). docs/CONTRACT.md is the contract now; its "Section map" says where
# each old reference points (docs/BENCHMARKS.md, "Measured on this machine",
# for MEASURED.md).
#
#   tools/check_refs.sh        the files, one a line
#   tools/check_refs.sh -n     every matching line, as file:line:text
#
# Exit 0 if no file refers to them, 1 if some do (make lint), 2 on misuse.
# Skips build*/ directories, node_modules, binary files and this script.
# docs/CONTRACT.md names the old references in its section map on purpose: in
# it only links into ../shared count.
set -euo pipefail

lines=0
case "${1:-}" in
  -n) lines=1 ;;
  "") ;;
  *) echo "usage: $0 [-n]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

pattern='\.\./shared|shared/SPEC|SPEC §|SPEC\.md|MEASURED\.md|\bSPEC\b'
contract_pattern='\.\./shared'
self=tools/check_refs.sh

list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files, as they are in the tree.
    git ls-files -z --cached --others --exclude-standard
  else
    find . -type f -not -path './.git/*' -printf '%P\0'
  fi
}

found=0
while IFS= read -r -d '' f; do
  case "$f" in
    build*/* | */node_modules/* | node_modules/* | "$self") continue ;;
  esac
  [ -f "$f" ] || continue  # deleted in the work tree
  p=$pattern
  [ "$f" = docs/CONTRACT.md ] && p=$contract_pattern
  if grep -qIE "$p" -- "$f"; then
    found=1
    if [ "$lines" = 1 ]; then
      grep -nIE "$p" -- "$f" | sed "s|^|$f:|"
    else
      echo "$f"
    fi
  fi
done < <(list_files | sort -z)

exit "$found"
