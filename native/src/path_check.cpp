// See path_check.h.
#include "path_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "common.h"

namespace msr {

std::string get_path(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a string (a file path)");
  std::string path = v.As<Napi::String>().Utf8Value();
  if (path.empty()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a file path, not an empty string");
  if (path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " contains a NUL byte, which no file name can hold; pass the path without it");
  }
  return path;
}

void check_input_file(const std::string& path, const std::string& what, const char* noun, const std::string& hint) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(st)) throw UserError(what + ": " + path + " is a folder; pass the path of a file in it");
  if (!std::filesystem::is_regular_file(st))
    throw UserError(what + ": no " + noun + " at " + path + "; check the path" + (hint.empty() ? "" : " " + hint));
}

void check_output_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UserError(what + ": " + path + " is a folder; pass the path of the file to write");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw UserError(what + ": the folder " + parent.string() + " does not exist; create it first");
}

void check_not_same_file(const std::string& input, const std::string& output, const std::string& what) {
  struct stat a {
  }, b{};
  if (stat(input.c_str(), &a) == 0 && stat(output.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
    throw UserError(what + ": " + output + " is the input file " + input + " itself; write to another path");
  }
}

std::string temporary_beside(const std::string& path) {
  std::random_device rd;
  for (;;) {
    std::string tmp = path + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(rd());
    std::error_code ec;
    if (!std::filesystem::exists(tmp, ec)) return tmp;
  }
}

}  // namespace msr
