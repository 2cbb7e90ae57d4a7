// Reading YAML configuration files (registries.d, sync's source file): errors that say where,
// and booleans as the Go tools that define these files read them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <optional>
#include <string>

#include "transports/util/result.h"

namespace regfs {

// " (line N)" for a node read from text; "" for one made in code.
inline std::string YamlWhere(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.is_null() || m.line < 0) return "";
  return " (line " + std::to_string(m.line + 1) + ")";
}

// EINVAL: "CONTEXT: MESSAGE (line N)".
inline Error YamlError(const std::string& context, const std::string& message,
                       const YAML::Node& at) {
  return MakeError(EINVAL, context + ": " + message + YamlWhere(at));
}

// A YAML boolean (null: none), as yaml.v3 reads one into a typed bool: the YAML 1.1
// spellings too ("yes", "on", …). EINVAL "CONTEXT: MESSAGE" for anything else.
inline Result<std::optional<bool>> YamlBool(const YAML::Node& n, const std::string& context,
                                            const std::string& message) {
  if (n.IsNull()) return std::optional<bool>();
  if (n.IsScalar()) {
    static const char* const kTrue[] = {"true", "True", "TRUE", "y",  "Y", "yes",
                                        "Yes",  "YES",  "on",   "On", "ON"};
    static const char* const kFalse[] = {"false", "False", "FALSE", "n",   "N",  "no",
                                         "No",    "NO",    "off",   "Off", "OFF"};
    for (const char* t : kTrue) {
      if (n.Scalar() == t) return std::optional<bool>(true);
    }
    for (const char* f : kFalse) {
      if (n.Scalar() == f) return std::optional<bool>(false);
    }
  }
  return YamlError(context, message, n);
}

}  // namespace regfs
