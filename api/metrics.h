// Prometheus text exposition (format 0.0.4), written one metric at a time:
// GET /metrics (api/metrics.cc) and the CAF door's counters (api/serve.cc).
#pragma once

#include <sstream>
#include <string>

namespace giftcard {

class MetricsText {
 public:
  // A metric with one unlabelled sample.
  template <class T>
  void metric(const char* name, const char* type, const char* help, const T& value) {
    family(name, type, help);
    sample(name, "", value);
  }
  // The HELP and TYPE lines of a metric whose samples follow.
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  // One sample; `labels` is "" or "{key=\"value\",...}".
  template <class T>
  void sample(const char* name, const std::string& labels, const T& value) {
    out_ << name << labels << ' ' << value << '\n';
  }
  // Lines rendered elsewhere, as they are.
  void raw(const std::string& lines) { out_ << lines; }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace giftcard
