// File arguments of native entry points: one check for every path the addon reads or writes, so
// that callers of the raw addon get the same guarantees as the TS API (whose own mirror,
// src/util/file-args.ts, checks its callers' paths before they reach here). This file owns the
// native side: a path with a NUL byte (which C would cut short, writing `victim.gguf` for
// "victim.gguf\0.new"), a folder where a file belongs, an output that is the input itself (same
// file by device and inode, so links and other spellings count too), an output whose folder is
// missing.
#pragma once
#include <napi.h>

#include <string>

namespace msr {

// On the JS thread: a non-empty string without NUL bytes (a TypeError naming `name` otherwise).
std::string get_path(const Napi::Value& v, const char* name);

// In the worker, before the file is opened; each throws UserError starting with `what`.
// An existing regular file; `noun` names it in the error ("model file"), `hint` says how to make one.
void check_input_file(const std::string& path, const std::string& what, const char* noun = "file", const std::string& hint = "");
// Not a folder, and its folder exists.
void check_output_file(const std::string& path, const std::string& what);
// `output` is not the file `input` names (when both exist): writing it would truncate the input
// while it is read or mapped.
void check_not_same_file(const std::string& input, const std::string& output, const std::string& what);

// A temporary name beside `path` that no file has yet (for writes that rename into place).
std::string temporary_beside(const std::string& path);

}  // namespace msr
