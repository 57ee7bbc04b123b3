// TempDir and the "did this test fail?" question it asks Boost.Test.
#include <boost/test/results_collector.hpp>
#include <boost/test/tree/global_fixture.hpp>
#include <boost/test/tree/test_unit.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "tests/harness/harness.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
namespace ut = boost::unit_test;

bool failed(const ut::test_results& r) {
  return r.p_assertions_failed > r.p_expected_failures || r.aborted() || r.p_timed_out;
}

// Remembers whether anything failed in this test binary, for questions asked outside a test
// case (global fixtures, test_finish observers) -- including after a crash that made Boost.Test
// abort the tree and skip the fixture teardowns. Registers itself with Boost.Test when
// constructed (static initialisation).
class FailureRecorder : public ut::global_configuration {
 public:
  void assertion_result(ut::assertion_result ar) override {
    if (ar == ut::AR_FAILED) failed_ = true;
  }
  void exception_caught(const boost::execution_exception&) override { failed_ = true; }
  void test_unit_aborted(const ut::test_unit&) override { failed_ = true; }
  void test_unit_timed_out(const ut::test_unit&) override { failed_ = true; }
  void test_aborted() override { failed_ = true; }
  bool failed() const { return failed_; }

 private:
  std::atomic<bool> failed_{false};
};

FailureRecorder failure_recorder;

bool leave_requested() {
  const char* v = std::getenv("SLUICE_TEST_LEAVE");
  return v && *v && std::strcmp(v, "0") != 0;
}

void dump_logs(const std::string& dir) {
  std::vector<fs::path> logs;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".log") logs.push_back(it->path());
  }
  std::sort(logs.begin(), logs.end());
  std::cerr << "sluice-test: kept " << dir << "\n";
  for (const auto& log : logs) {
    std::cerr << "---- " << log.string() << " (tail) ----\n" << tail_file(log.string(), 100);
    std::cerr << "---- end of " << log.filename().string() << " ----\n";
  }
  std::cerr.flush();
}

}  // namespace

bool current_test_failed() {
  if (ut::framework::test_in_progress()) {
    ut::test_unit_id id = ut::framework::current_test_case_id();
    if (id != ut::INV_TEST_UNIT_ID && ut::framework::get(id, ut::TUT_ANY).p_type == ut::TUT_CASE) {
      return failed(ut::results_collector.results(id));
    }
  }
  return failure_recorder.failed();  // between test cases: has anything failed so far?
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail_file(const std::string& path, std::size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last)
    out += l + "\n";
  return out;
}

TempDir::TempDir() : uncaught_at_ctor_(std::uncaught_exceptions()) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/sluice-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    throw std::runtime_error("mkdtemp(" + tmpl + ") failed: " + std::strerror(errno));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  bool unwinding = std::uncaught_exceptions() > uncaught_at_ctor_;
  bool keep = keep_ || unwinding || leave_requested();
  try {
    if (!keep) keep = current_test_failed();
  } catch (...) {
    keep = true;  // the framework is in an odd state: err on the side of evidence
  }
  if (keep) {
    dump_logs(path_);
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& name) const {
  return path_ + "/" + name;
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string full = file(name);
  std::error_code ec;
  fs::create_directories(fs::path(full).parent_path(), ec);
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + full);
  return full;
}

std::string TempDir::read(const std::string& name) const {
  return read_file(file(name));
}

bool TempDir::exists(const std::string& name) const {
  std::error_code ec;
  return fs::exists(file(name), ec);
}

}  // namespace sluice::test
