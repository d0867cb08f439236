#!/bin/sh
# Builds Debian's CAF 0.17.6 (libcaf_core, libcaf_io, libcaf_openssl) with
# ThreadSanitizer into $1/lib, for `make tsan` (docs/RELIABILITY.md,
# "ThreadSanitizer"). Usage: tests/tsan_caf.sh <dir> [jobs] [c++ compiler]
#
# Why: every message between actors passes through CAF's lock-free mailboxes
# and work queues. In Debian's uninstrumented libcaf_core TSan cannot see that
# synchronization, and reports every message hand-off as a race (about a
# thousand reports in one run of actors_test.concurrency). No suppression can
# tell those apart from a real race in our actors: every actor's stack runs
# through libcaf_core. So the TSan build links an instrumented copy instead.
#
# The source is the upstream tarball of the installed libcaf-dev's Debian
# source package (apt-get source, with a private list directory: the system's
# Debian sources as deb-src; nothing in /etc or /var is changed). Debian's
# only change to the installed headers is an `#include <limits>`, applied
# here; the script then checks that the headers and the generated
# build_config.hpp are byte-identical to /usr/include/caf, so the
# instrumented libraries are ABI-compatible with what giftcard compiles against.
set -eu

dir=$(mkdir -p "$1" && cd "$1" && pwd)
jobs=${2:-2}
cxx=${3:-c++}
if [ -f "$dir/lib/libcaf_core.so.0.17.6" ] && [ -f "$dir/lib/libcaf_io.so.0.17.6" ] &&
   [ -f "$dir/lib/libcaf_openssl.so.0.17.6" ] && [ -f "$dir/ok" ]; then
  exit 0
fi

version=$(dpkg-query -W -f='${source:Version}' libcaf-dev)   # e.g. 0.17.6-2.1
upstream=${version%-*}
tarball=actor-framework_${upstream}.orig.tar.gz

# 1. The source package's upstream tarball.
apt="$dir/apt"
mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$dir/dl"
: > "$apt/src.list"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$apt/parts/debian.sources"
fi
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list > "$apt/src.list"
fi
aptopts="-o Dir::Etc::SourceList=$apt/src.list -o Dir::Etc::SourceParts=$apt/parts \
  -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache -o APT::Sandbox::User=root"
if [ ! -f "$dir/dl/$tarball" ]; then
  # shellcheck disable=SC2086
  apt-get -qq $aptopts update
  # Only the upstream tarball is needed: a missing .debian.tar.xz is not fatal.
  # shellcheck disable=SC2086
  (cd "$dir/dl" && apt-get -qq $aptopts source --download-only "actor-framework=$version") ||
    echo "tsan_caf.sh: only $tarball is used; an error about the Debian packaging tarball is harmless"
  [ -f "$dir/dl/$tarball" ] || { echo "tsan_caf.sh: could not download $tarball" >&2; exit 1; }
fi

# 2. Unpack; Debian's header change.
rm -rf "$dir/src" "$dir/build" "$dir/ok"
mkdir -p "$dir/src"
tar -xzf "$dir/dl/$tarball" -C "$dir/src" --strip-components=1
rb="$dir/src/libcaf_io/caf/io/network/receive_buffer.hpp"
grep -q '<limits>' "$rb" || sed -i 's/^#include <cstring>$/#include <cstring>\n#include <limits>/' "$rb"

# 3. Configure as Debian does (log level QUIET, memory management on) and build
#    the three shared libraries with -fsanitize=thread.
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -w" \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  -DCAF_NO_EXAMPLES=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_TOOLS=yes -DCAF_NO_PYTHON=yes \
  -DCAF_NO_OPENCL=yes -DCAF_NO_SUMMARY=yes -DCAF_BUILD_STATIC=no -DCAF_NO_COMPILER_CHECK=yes \
  -DLIBRARY_OUTPUT_PATH="$dir/lib" > "$dir/configure.log"

# 4. Same headers and configuration as the installed libcaf-dev, or stop.
for lib in core io openssl; do
  if diff -rq "$dir/src/libcaf_$lib/caf" /usr/include/caf | grep -v '^Only in /usr/include/caf'; then
    echo "tsan_caf.sh: libcaf_$lib headers differ from /usr/include/caf" >&2; exit 1
  fi
done
cfg=$(find "$dir/build" -name build_config.hpp | head -n 1)
diff "$cfg" /usr/include/caf/detail/build_config.hpp ||
  { echo "tsan_caf.sh: build_config.hpp differs from libcaf-dev's" >&2; exit 1; }

cmake --build "$dir/build" -j "$jobs" --target libcaf_core_shared libcaf_io_shared libcaf_openssl_shared
touch "$dir/ok"
