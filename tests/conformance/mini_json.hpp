#pragma once
// A minimal JSON reader for the golden cases' case.json: objects, arrays,
// strings (no escapes beyond \" and \\), numbers, true/false/null. Enough for
// the test data format, not a general parser.

#include <cctype>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace normnorm::test {

struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  bool has(const std::string& key) const { return type == Type::object && fields.count(key) != 0; }
  const Json& operator[](const std::string& key) const {
    auto it = fields.find(key);
    if (it == fields.end()) throw std::runtime_error("case.json: missing key '" + key + "'");
    return it->second;
  }
  bool is_null() const { return type == Type::null; }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}
  Json parse() {
    Json value = parse_value();
    skip();
    if (i_ != s_.size()) error("trailing characters");
    return value;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    throw std::runtime_error("case.json: " + what + " at offset " + std::to_string(i_));
  }
  void skip() { while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_; }
  bool consume(char c) { skip(); if (i_ < s_.size() && s_[i_] == c) { ++i_; return true; } return false; }
  void expect(char c) { if (!consume(c)) error(std::string("expected '") + c + "'"); }
  bool literal(const char* word) {
    const std::string w(word);
    if (s_.compare(i_, w.size(), w) == 0) { i_ += w.size(); return true; }
    return false;
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ >= s_.size()) error("unterminated string");
    ++i_;
    return out;
  }
  Json parse_value() {
    skip();
    Json v;
    if (i_ >= s_.size()) error("unexpected end");
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      v.type = Json::Type::object;
      if (consume('}')) return v;
      do {
        skip();
        std::string key = parse_string();
        expect(':');
        v.fields[key] = parse_value();
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.type = Json::Type::array;
      if (consume(']')) return v;
      do v.items.push_back(parse_value()); while (consume(','));
      expect(']');
    } else if (c == '"') {
      v.type = Json::Type::string;
      v.text = parse_string();
    } else if (literal("true")) {
      v.type = Json::Type::boolean;
      v.boolean = true;
    } else if (literal("false")) {
      v.type = Json::Type::boolean;
    } else if (literal("null")) {
      v.type = Json::Type::null;
    } else {
      std::size_t used = 0;
      try { v.number = std::stod(s_.substr(i_), &used); } catch (...) { error("bad value"); }
      v.type = Json::Type::number;
      i_ += used;
    }
    return v;
  }
  const std::string& s_;
  std::size_t i_ = 0;
};

}  // namespace normnorm::test
