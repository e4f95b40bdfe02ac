// User grammars (GBNF) run through llama.cpp's grammar code, which recurses: its parser once per
// level of nested parentheses (about 450 bytes of stack a level, measured on x86-64 -O2), its
// left-recursion check once per rule and its stack advance once per rule reference reached
// without consuming a character (about 130 bytes each). A grammar deep enough overflows any fixed
// stack, and an overflow kills the process; grammars come from users (a server embedding msr-rec
// passes them on). So every grammar is held to the limits below, and all llama.cpp grammar work
// of a call (building the samplers and sampling with them) runs on a thread whose stack holds
// those limits several times over (run_on_grammar_stack): 10,000 levels need about 4.5 MB and
// 100,000 rule references about 13 MB of its 64 MiB.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "llama.h"

namespace msr {

constexpr size_t kGrammarMaxBytes = 4u << 20;   // text of one grammar
constexpr int kGrammarMaxNesting = 10000;       // parentheses inside parentheses
constexpr size_t kGrammarMaxRules = 100000;     // rules, after llama.cpp expands repetitions into rules
constexpr size_t kGrammarMaxRuleRefs = 100000;  // references to rules in all of them
constexpr size_t kGrammarStackBytes = 64u << 20;

// Parses `gbnf` as llama.cpp does and throws UserError when it is past a limit (naming it) or not
// valid GBNF. `which` names the grammar in the message ("the grammar", "grammars[3]"). Must run
// on the grammar stack: parsing is the recursion being bounded.
void check_grammar(const llama_vocab* vocab, const std::string& gbnf, const std::string& which);

// Runs `fn` on a thread with a stack of kGrammarStackBytes and waits for it; an exception from
// `fn` is rethrown here.
void run_on_grammar_stack(const std::function<void()>& fn);

}  // namespace msr
