// Errors about YAML configuration files (registries.d, sync's source file) that say where.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cerrno>
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

}  // namespace regfs
