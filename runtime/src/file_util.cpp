#include "gsa/runtime/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

}  // namespace

bool path_exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

bool is_directory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

void make_directories(const std::string& path) {
  GSA_CHECK(!path.empty(), "make_directories: empty path");
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    const std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      throw Error(str_cat("cannot create directory '", prefix, "': ", std::strerror(errno)));
    }
    if (pos == std::string::npos) break;
  }
  GSA_CHECK(is_directory(path), "'", path, "' exists and is not a directory");
}

void remove_tree(const std::string& path) {
  if (!path_exists(path)) return;
  GSA_CHECK(::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove '", path, "': ",
            std::strerror(errno));
}

void rename_path(const std::string& from, const std::string& to) {
  GSA_CHECK(::rename(from.c_str(), to.c_str()) == 0, "cannot rename '", from, "' to '", to, "': ", std::strerror(errno));
}

void write_file_atomic(const std::string& path, const std::string& text, const FileOpHook& hook) {
  auto step = [&](const char* op, const std::string& on) {
    if (hook) hook(op, on);
  };
  const std::string tmp = path + ".tmp";
  step("create", tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GSA_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  // Two parts, so a crash injected between them leaves a half-written file behind.
  const size_t half = text.size() / 2;
  size_t done = 0;
  for (const size_t end : {half, text.size()}) {
    step(done == 0 ? "write" : "write-rest", tmp);
    while (done < end) {
      const ssize_t n = ::write(fd, text.data() + done, end - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::close(fd);
        throw Error(str_cat("cannot write '", tmp, "': ", std::strerror(err)));
      }
      done += static_cast<size_t>(n);
    }
  }
  step("fsync", tmp);
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  GSA_CHECK(synced, "fsync of '", tmp, "' failed: ", std::strerror(err));
  step("rename", path);
  rename_path(tmp, path);
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GSA_CHECK(fd >= 0, "cannot read '", path, "': ", std::strerror(errno));
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(str_cat("cannot read '", path, "': ", std::strerror(err)));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int64_t file_size(const std::string& path) {
  struct stat info;
  GSA_CHECK(::stat(path.c_str(), &info) == 0, "cannot stat '", path, "': ", std::strerror(errno));
  return static_cast<int64_t>(info.st_size);
}

std::vector<std::string> list_directory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  GSA_CHECK(dir != nullptr, "cannot list directory '", path, "': ", std::strerror(errno));
  std::vector<std::string> names;
  while (const struct dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

void sync_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

}  // namespace gsa
