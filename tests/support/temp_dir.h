// temp_dir.h: a fresh private directory under /tmp for a test, removed with everything in it
// when the TempDir goes away. Thread-safety: a TempDir is a plain value owned by one test;
// distinct TempDirs are independent (mkdtemp names are unique).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ecmplb::test_support {

class TempDir {
 public:
  // /tmp/<prefix>XXXXXX, created with mode 0700.
  static absl::StatusOr<TempDir> Create(std::string_view prefix);

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name (the file is not created).
  std::string File(std::string_view name) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;  // empty once moved from
};

// The whole content of the file at `path` ("" if it cannot be read).
std::string ReadFile(const std::string& path);

}  // namespace ecmplb::test_support
