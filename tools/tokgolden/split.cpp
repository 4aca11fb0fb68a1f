// split.cpp: llama.cpp's pre-tokenizer split, from the libllama that
// node-llama-cpp ships prebuilt, which exports unicode_regex_split (the
// function llama.cpp's BPE tokenizer runs before merging). llamacpp.js
// builds and runs it to record the words of each golden text; node-llama-cpp
// itself gives only the ids.
//
// Protocol (stdin, one item a line, strings hex-encoded UTF-8):
//   R <hex>   add a regex to the list (in order)
//   T <hex>   split a text with the list so far; prints the byte-level
//             words, hex-encoded, separated by spaces, on one line
//   V         prints the build's llama.cpp commit and build number
//             (LLAMA_COMMIT, LLAMA_BUILD_NUMBER of libllama-common)
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

// From libllama (src/unicode.h) and libllama-common (common/build-info.h).
const char * llama_commit(void);
int llama_build_number(void);
std::vector<std::string> unicode_regex_split(const std::string & text, const std::vector<std::string> & regex_exprs, bool byte_encode);

static std::string unhex(const std::string & h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        out += (char) std::stoi(h.substr(i, 2), nullptr, 16);
    }
    return out;
}

static std::string hex(const std::string & s) {
    static const char * d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

int main() {
    std::vector<std::string> regexes;
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "V") {
            std::cout << llama_commit() << ' ' << llama_build_number() << '\n' << std::flush;
            continue;
        }
        if (line.size() < 2) {
            continue;
        }
        const std::string arg = unhex(line.substr(2));
        if (line[0] == 'R') {
            regexes.push_back(arg);
        } else if (line[0] == 'T') {
            const auto words = unicode_regex_split(arg, regexes, true);
            std::string out;
            for (size_t i = 0; i < words.size(); i++) {
                if (i) out += ' ';
                out += hex(words[i]);
            }
            std::cout << out << '\n' << std::flush;
        }
    }
    return 0;
}
