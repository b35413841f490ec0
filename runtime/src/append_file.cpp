// Whole-record log files; the contract is in gsa/runtime/append_file.h.
#include "gsa/runtime/append_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "gsa/runtime/error.h"

namespace gsa {

AppendFile::AppendFile(std::string path, bool create_new) : path_(std::move(path)) {
  const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create_new ? O_CREAT | O_EXCL : 0);
  fd_ = ::open(path_.c_str(), flags, 0644);
  GSA_CHECK(fd_ >= 0, "cannot ", create_new ? "create" : "open", " '", path_, "' for appending: ",
            std::strerror(errno));
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::append(const std::string& bytes) {
  for (;;) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    GSA_CHECK(n == static_cast<ssize_t>(bytes.size()), path_, ": appending ", bytes.size(), " bytes failed: ",
              n < 0 ? std::strerror(errno) : "short write");
    return;
  }
}

}  // namespace gsa
