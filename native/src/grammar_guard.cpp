// See grammar_guard.h.
#include "grammar_guard.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <system_error>

#include "common.h"
#include "llama-grammar.h"

namespace msr {

namespace {

// The deepest nesting of parentheses, skipping what llama.cpp's parser does not read as grouping:
// string literals and character classes (with their backslash escapes) and # comments. Counted on
// the text, before the parser recurses into it.
int nesting_depth(const std::string& s) {
  int depth = 0, deepest = 0;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    if (c == '#') {
      while (i < s.size() && s[i] != '\n' && s[i] != '\r') i++;
    } else if (c == '"' || c == '[') {
      const char close = c == '"' ? '"' : ']';
      for (i++; i < s.size() && s[i] != close; i++) {
        if (s[i] == '\\') i++;
      }
    } else if (c == '(') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ')') {
      depth = std::max(0, depth - 1);
    }
  }
  return deepest;
}

struct StackJob {
  const std::function<void()>* fn;
  std::exception_ptr error;
};

void* run_job(void* p) {
  auto* job = static_cast<StackJob*>(p);
  try {
    (*job->fn)();
  } catch (...) {
    job->error = std::current_exception();
  }
  return nullptr;
}

}  // namespace

void check_grammar(const llama_vocab* vocab, const std::string& gbnf, const std::string& which) {
  const std::string where = "generate: " + which;
  if (gbnf.size() > kGrammarMaxBytes) {
    throw UserError(where + " is " + std::to_string(gbnf.size()) + " bytes long; grammars are limited to " + std::to_string(kGrammarMaxBytes) +
                    " bytes");
  }
  const int depth = nesting_depth(gbnf);
  if (depth > kGrammarMaxNesting) {
    throw UserError(where + " nests parentheses " + std::to_string(depth) + " deep; grammars may nest at most " + std::to_string(kGrammarMaxNesting) +
                    " levels");
  }
  llama_grammar_parser parser(vocab);
  take_llama_errors();
  if (!parser.parse(gbnf.c_str()) || parser.rules.empty()) {
    throw UserError(where + " is not valid GBNF (llama.cpp's parser wrote why to stderr); it needs a `root` rule");
  }
  size_t refs = 0;
  for (const auto& rule : parser.rules) {
    refs +=
        static_cast<size_t>(std::count_if(rule.begin(), rule.end(), [](const llama_grammar_element& e) { return e.type == LLAMA_GRETYPE_RULE_REF; }));
  }
  if (parser.rules.size() > kGrammarMaxRules || refs > kGrammarMaxRuleRefs) {
    throw UserError(where + " has " + std::to_string(parser.rules.size()) + " rules with " + std::to_string(refs) +
                    " references between them (repetitions count as the rules llama.cpp expands them into); grammars may have at most " +
                    std::to_string(kGrammarMaxRules) + " rules and " + std::to_string(kGrammarMaxRuleRefs) + " references");
  }
}

void run_on_grammar_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) throw std::system_error(ENOMEM, std::generic_category(), "pthread_attr_init");
  StackJob job{&fn, nullptr};
  pthread_t thread;
  int rc = pthread_attr_setstacksize(&attr, kGrammarStackBytes);
  if (rc == 0) rc = pthread_create(&thread, &attr, run_job, &job);
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "a thread for grammar work");
  pthread_join(thread, nullptr);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace msr
