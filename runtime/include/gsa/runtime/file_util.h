// Small POSIX file helpers.
//
// Why not std::filesystem: the pip LibTorch (libtorch.so) exports its own copies of std::filesystem free
// functions, and a program linking it can crash in std::filesystem::remove_all on an existing directory (seen
// with torch 2.11.0 here). Everything in gsa that touches directories goes through these instead.
//
// Contract: every function throws gsa::Error naming the path and strerror(errno) on failure, except
// path_exists / is_directory, which only answer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gsa {

// Observes each step of a crash-safe write, called just BEFORE the step with its name and path: "create",
// "write" (the first part of the bytes), "write-rest" (the rest: stopping there leaves a half-written file),
// "fsync", "rename" (path = the destination), "mkdir", "fsync-dir", "remove". Tests inject crashes through it
// (it may throw or never return); an empty hook does nothing.
using FileOpHook = std::function<void(const std::string& op, const std::string& path)>;

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_directories(const std::string& path);        // mkdir -p
void remove_tree(const std::string& path);             // rm -rf; a missing path is fine
void rename_path(const std::string& from, const std::string& to);
// Writes text to <path>.tmp, fsyncs it and renames it over path (the directory is not fsynced).
void write_file_atomic(const std::string& path, const std::string& text, const FileOpHook& hook = {});
std::string read_file(const std::string& path);                  // the whole file
int64_t file_size(const std::string& path);
std::vector<std::string> list_directory(const std::string& path);  // entry names without . and .., sorted
// fsync of a directory so a rename inside it survives a crash (best effort where unsupported).
void sync_directory(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace gsa
