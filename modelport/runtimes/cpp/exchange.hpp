// modelport's tensor exchange, read and written from C++ (see modelport/runtimes/exchange.py).
//
// A folder holds sets.json and one raw little-endian file per tensor. This header reads the
// input sets modelport wrote and writes the outputs back in the same form; modelport checks
// everything it reads back, so a mistake here fails a comparison, never passes one.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace exchange {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Bytes per element of every dtype the exchange allows; bool is one byte (0 or 1).
inline const std::map<std::string, size_t>& dtype_sizes() {
    static const std::map<std::string, size_t> sizes = {
        {"float32", 4}, {"float16", 2}, {"float64", 8}, {"int64", 8}, {"int32", 4},
        {"int16", 2},   {"int8", 1},    {"uint8", 1},   {"bool", 1},
    };
    return sizes;
}

struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<char> bytes;  // C order, little-endian
};

struct Set {
    std::string name;
    std::vector<Tensor> tensors;
};

inline bool little_endian() {
    const uint16_t one = 1;
    unsigned char first = 0;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

inline std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline int64_t elements(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

// The input sets modelport wrote under `folder`, every tensor's size checked against its shape.
inline std::vector<Set> read_sets(const fs::path& folder) {
    if (!little_endian()) throw std::runtime_error("this program reads little-endian tensors only");
    const json index = json::parse(slurp(folder / "sets.json"));
    std::vector<Set> sets;
    for (const auto& entry : index.at("sets")) {
        Set set{entry.at("name").get<std::string>(), {}};
        for (const auto& t : entry.at("tensors")) {
            Tensor tensor{t.at("name").get<std::string>(), t.at("dtype").get<std::string>(),
                          t.at("shape").get<std::vector<int64_t>>(), {}};
            const auto size = dtype_sizes().find(tensor.dtype);
            if (size == dtype_sizes().end()) throw std::runtime_error("unknown dtype " + tensor.dtype);
            const std::string data = slurp(folder / t.at("file").get<std::string>());
            if (data.size() != static_cast<size_t>(elements(tensor.shape)) * size->second) {
                throw std::runtime_error("tensor " + tensor.name + " of set " + set.name + " has " +
                                         std::to_string(data.size()) + " bytes, not what its shape needs");
            }
            tensor.bytes.assign(data.begin(), data.end());
            set.tensors.push_back(std::move(tensor));
        }
        sets.push_back(std::move(set));
    }
    return sets;
}

// A latency profile's rule (the "profile" field of the input index; modelport/profiling/loop.py): `warmup`
// untimed calls, then timed calls until at least min_iterations and min_seconds, capped by the max_ fields.
struct Profile {
    bool on = false;
    int64_t warmup = 0, min_iterations = 1, max_iterations = 1;
    double min_seconds = 0, max_seconds = 0;

    bool keep_timing(size_t count, double total) const {
        if (count == 0) return true;
        if (!on || static_cast<int64_t>(count) >= max_iterations || total >= max_seconds) return false;
        return static_cast<int64_t>(count) < min_iterations || total < min_seconds;
    }
};

inline Profile read_profile(const fs::path& folder) {
    const json index = json::parse(slurp(folder / "sets.json"));
    Profile profile;
    if (!index.contains("profile")) return profile;
    const auto& p = index.at("profile");
    profile.on = true;
    profile.warmup = p.at("warmup").get<int64_t>();
    profile.min_iterations = p.at("min_iterations").get<int64_t>();
    profile.max_iterations = p.at("max_iterations").get<int64_t>();
    profile.min_seconds = p.at("min_seconds").get<double>();
    profile.max_seconds = p.at("max_seconds").get<double>();
    return profile;
}

// An error message on one line (runtimes print multi-line messages and backtraces). When too long,
// the first and the last line: TorchScript puts its interpreter traceback between the two.
inline std::string one_line(const std::string& text, size_t limit = 400) {
    std::istringstream in(text);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        const auto start = line.find_first_not_of(" \t\r");
        if (start != std::string::npos) lines.push_back(line.substr(start));
    }
    std::string joined;
    for (const auto& line : lines) joined += (joined.empty() ? "" : " | ") + line;
    if (joined.size() <= limit || lines.size() < 2) return joined.substr(0, limit);
    const size_t half = limit / 2;
    return lines.front().substr(0, half) + " | ... | " + lines.back().substr(0, half);
}

// Collects the answer for every set, then writes sets.json last (its presence means complete).
class Writer {
   public:
    explicit Writer(fs::path folder) : folder_(std::move(folder)) { fs::create_directories(folder_); }

    void add(const std::string& set_name, const std::vector<Tensor>& outputs, double seconds,
             const std::vector<double>& times = {}, int64_t warmup = 0) {
        const std::string sub = std::to_string(sets_.size());
        fs::create_directories(folder_ / sub);
        json tensors = json::array();
        for (size_t j = 0; j < outputs.size(); ++j) {
            const std::string rel = sub + "/" + std::to_string(j) + ".bin";
            std::ofstream out(folder_ / rel, std::ios::binary);
            out.write(outputs[j].bytes.data(), static_cast<std::streamsize>(outputs[j].bytes.size()));
            if (!out) throw std::runtime_error("cannot write " + (folder_ / rel).string());
            tensors.push_back(
                {{"name", outputs[j].name}, {"dtype", outputs[j].dtype}, {"shape", outputs[j].shape}, {"file", rel}});
        }
        json entry = {{"name", set_name}, {"tensors", tensors}, {"seconds", seconds}};
        if (!times.empty()) {
            entry["times"] = times;
            entry["warmup"] = warmup;
        }
        sets_.push_back(entry);
    }

    void fail(const std::string& set_name, const std::string& error) {
        sets_.push_back({{"name", set_name}, {"error", one_line(error)}});
    }

    void finish(const json& runtime, double load_seconds) {
        const json index = {{"kind", "modelport-tensors"}, {"version", 1}, {"runtime", runtime},
                            {"load_seconds", load_seconds}, {"sets", sets_}};
        std::ofstream out(folder_ / "sets.json");
        out << index.dump(1);
        if (!out) throw std::runtime_error("cannot write " + (folder_ / "sets.json").string());
    }

   private:
    fs::path folder_;
    json sets_ = json::array();
};

// Runs every set with run(set, seconds) -> outputs, a set that throws failing alone (message(e) says why),
// then writes the index; returns the program's exit code. With a profile, each set runs by its rule and
// records every timed call's seconds (measured by run, around the inference alone).
template <typename Run, typename Message>
int answer_all(const std::string& folder, const std::vector<Set>& sets, Run run, Message message,
               const json& runtime, double load_seconds, const Profile& profile = Profile{}) {
    Writer writer(folder);
    for (const auto& set : sets) {
        try {
            double seconds = 0;
            for (int64_t i = 0; profile.on && i < profile.warmup; ++i) run(set, seconds);
            std::vector<double> times;
            double total = 0;
            auto outputs = run(set, seconds);
            times.push_back(seconds);
            total += seconds;
            while (profile.keep_timing(times.size(), total)) {
                outputs = run(set, seconds);
                times.push_back(seconds);
                total += seconds;
            }
            writer.add(set.name, outputs, seconds, profile.on ? times : std::vector<double>{}, profile.warmup);
        } catch (const std::exception& e) {
            writer.fail(set.name, message(e));
        }
    }
    try {
        writer.finish(runtime, load_seconds);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace exchange
