// Small POSIX file helpers.
//
// Why not std::filesystem: the pip LibTorch (libtorch.so) exports its own copies of std::filesystem free
// functions, and a program linking it can crash in std::filesystem::remove_all on an existing directory (seen
// with torch 2.11.0 here). Everything in gsa that touches directories goes through these instead.
//
// Contract: every function throws gsa::Error naming the path and strerror(errno) on failure, except
// path_exists / is_directory, which only answer.
#pragma once

#include <string>

namespace gsa {

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_directories(const std::string& path);        // mkdir -p
void remove_tree(const std::string& path);             // rm -rf; a missing path is fine
void rename_path(const std::string& from, const std::string& to);
// The whole file as bytes; throws gsa::Error "cannot read '<path>': <strerror>" when it cannot be opened or read.
std::string read_file(const std::string& path);
// Writes text to <path>.tmp, fsyncs it and renames it over path.
void write_file_atomic(const std::string& path, const std::string& text);
// fsync of a directory so a rename inside it survives a crash (best effort where unsupported).
void sync_directory(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace gsa
