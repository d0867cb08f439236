// Replays inputs through a fuzz target without libFuzzer, so that every
// target also builds with g++ and its corpus runs under ctest (Release and
// ASan+UBSan builds; see fuzz/CMakeLists.txt).
//
//   <t>_fuzz_replay PATH...
//
// Each PATH is a file or a directory (searched recursively; names starting
// with '.' are skipped, e.g. .gitkeep). Every input is run once, in name
// order. Prints how many inputs ran; exits 1 if a path is missing or nothing
// at all was run. Each input is named on stderr ("replay: running <file>")
// before it runs, so that an input that aborts inside the target (a crash
// under libFuzzer) is the last one named.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
// Optional: a target that keeps threads (an actor system, a shop) defines this
// to stop them. It runs before main returns: CAF 0.17.6 cannot be shut down
// from an atexit handler (glibc has already destroyed the main thread's
// thread_locals by then). Under libFuzzer the process exits with them running.
extern "C" __attribute__((weak)) void GiftcardFuzzShutdown();

namespace fs = std::filesystem;

namespace {

bool hidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  int paths = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file()) files.push_back(it->path());
      }
      if (ec) {
        std::fprintf(stderr, "replay: cannot read %s: %s\n", argv[i], ec.message().c_str());
        return 1;
      }
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
    ++paths;
  }
  if (paths == 0) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 1;
  }
  std::sort(files.begin(), files.end());
  size_t bytes = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "replay: cannot open %s\n", f.c_str());
      return 1;
    }
    std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A heap copy of exactly the input's size, so that ASan sees reads past its end.
    std::unique_ptr<uint8_t[]> data(new uint8_t[buf.size() ? buf.size() : 1]);
    std::copy(buf.begin(), buf.end(), data.get());
    std::fprintf(stderr, "replay: running %s\n", f.c_str());
    LLVMFuzzerTestOneInput(data.get(), buf.size());
    bytes += buf.size();
  }
  if (GiftcardFuzzShutdown) GiftcardFuzzShutdown();
  std::printf("replay: ran %zu inputs (%zu bytes) from %d path(s)\n", files.size(), bytes, paths);
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  return 0;
}
