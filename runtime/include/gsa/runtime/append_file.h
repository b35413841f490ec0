// A log file of whole records (metrics lines, TensorBoard events).
//
// Contract: each append() is a single write(2) on an O_APPEND descriptor, so a kill leaves whole records; a
// short or failed write throws gsa::Error naming the file. create_new: the file must not exist yet (O_EXCL),
// else it must exist (it is opened, not truncated). Not thread-safe.
#pragma once

#include <string>

namespace gsa {

class AppendFile {
 public:
  AppendFile(std::string path, bool create_new);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  void append(const std::string& bytes);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace gsa
