// Type-safe reads of JSON fields from untrusted documents: a field of the wrong type reads as
// absent instead of throwing.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace regfs {

template <class Json>
std::string JsonString(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->template get<std::string>() : std::string();
}

template <class Json>
std::optional<int64_t> JsonInt(const Json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->template get<int64_t>();
}

}  // namespace regfs
