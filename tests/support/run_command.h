// Runs a shell command for a test, capturing stdout (stderr is discarded).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace giftcard::test {

// Returns the exit code (-1 if the command did not exit normally).
inline int run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace giftcard::test
