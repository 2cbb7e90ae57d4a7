// A strict parser for the subset of TOML that containers-registries.conf(5) is written in:
// tables ([a.b]), arrays of tables ([[a.b]]), bare and quoted keys, basic ("…", with escapes)
// and literal ('…') strings, booleans, arrays (over several lines, with comments and a trailing
// comma), and # comments. Anything else — numbers, dates, inline tables, multi-line strings,
// dotted keys in key/value pairs — is an error naming its line, never silently skipped, so a
// setting regfs does not understand cannot be mistaken for one it does.
//
// Pure functions over strings; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "transports/result.h"

namespace regfs {

struct TomlValue;

// Keys in the order they were written; values[i] belongs to keys[i].
struct TomlTable {
  std::vector<std::string> keys;
  std::vector<TomlValue> values;

  // nullptr when the key is absent.
  const TomlValue* Find(std::string_view key) const;
  TomlValue* Find(std::string_view key);
};

struct TomlValue {
  enum class Kind { kString, kBool, kArray, kTable };

  Kind kind = Kind::kString;
  std::string string;            // kString
  bool boolean = false;          // kBool
  std::vector<TomlValue> array;  // kArray (elements of any kind; tables for [[…]])
  TomlTable table;               // kTable

  // Bookkeeping for the parser's redefinition checks.
  bool array_of_tables = false;  // an array created by [[…]] headers
  bool defined = false;          // a table named by its own [header] or written inline
};

// Parses a whole document into its root table. Errors are EINVAL with "line N: …".
Result<TomlTable> ParseToml(std::string_view text);

}  // namespace regfs
