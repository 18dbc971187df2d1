// modelport's libtorch runtime: load a TorchScript artifact with torch::jit::load and run every input set.
//
//   libtorch_runner MODEL INPUT_DIR OUTPUT_DIR --dtypes D1,D2,... [OUTPUT_NAME ...]
//
// Inputs are passed to forward() by position, in the order sets.json lists them (the signature's), or with
// --keyword by name (a scripted module whose inputs are its parameters' names, in any order);
// each is cast to its dtype in --dtypes (bfloat16 arrives widened to float32). The outputs (a tensor,
// or tuples, lists and dicts of tensors, flattened in order, None dropped) are written under the
// signature's names; bfloat16 widens to float32, as modelport's own golden outputs do.
// Exit 0 with sets.json written; exit 2 when the inputs or arguments cannot be read; exit 1 when
// the model cannot be loaded (the message on stderr).
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <chrono>
#include <iostream>

#include "exchange.hpp"

namespace {

using Clock = std::chrono::steady_clock;

const std::map<std::string, at::ScalarType>& scalar_types() {
    static const std::map<std::string, at::ScalarType> types = {
        {"float32", at::kFloat}, {"float16", at::kHalf},  {"float64", at::kDouble},
        {"int64", at::kLong},    {"int32", at::kInt},     {"int16", at::kShort},
        {"int8", at::kChar},     {"uint8", at::kByte},    {"bool", at::kBool},
        {"bfloat16", at::kBFloat16},
    };
    return types;
}

std::string dtype_name(at::ScalarType type) {
    for (const auto& [name, t] : scalar_types())
        if (t == type) return name;
    throw std::runtime_error(std::string("an output is ") + c10::toString(type) + ", which modelport cannot read");
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, sep)) parts.push_back(part);
    return parts;
}

void flatten(const c10::IValue& value, std::vector<at::Tensor>& out) {
    if (value.isTensor()) {
        out.push_back(value.toTensor());
    } else if (value.isTuple()) {
        for (const auto& item : value.toTupleRef().elements()) flatten(item, out);
    } else if (value.isList()) {
        for (const c10::IValue item : value.toListRef()) flatten(item, out);
    } else if (value.isGenericDict()) {
        for (const auto& item : value.toGenericDict()) flatten(item.value(), out);  // insertion order
    } else if (!value.isNone()) {
        throw std::runtime_error("the model returned a " + value.tagKind() + ", not a tensor");
    }
}

exchange::Tensor to_exchange(const std::string& name, at::Tensor t) {
    t = t.detach().cpu();
    if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);  // numpy has no bfloat16
    t = t.contiguous();
    exchange::Tensor out{name, dtype_name(t.scalar_type()), t.sizes().vec(), {}};
    const char* data = static_cast<const char*>(t.data_ptr());
    out.bytes.assign(data, data + t.nbytes());
    return out;
}

std::vector<exchange::Tensor> run_set(torch::jit::Module& module, const exchange::Set& set,
                                      const std::vector<std::string>& dtypes, const std::vector<std::string>& names,
                                      bool keyword, double& seconds) {
    if (set.tensors.size() != dtypes.size())
        throw std::runtime_error("the set has " + std::to_string(set.tensors.size()) + " inputs, the signature " +
                                 std::to_string(dtypes.size()));
    std::vector<c10::IValue> inputs;
    torch::jit::Kwargs by_name;  // --keyword: a scripted module called by its parameters' names
    for (size_t i = 0; i < set.tensors.size(); ++i) {
        const auto& t = set.tensors[i];
        auto raw = torch::from_blob(const_cast<char*>(t.bytes.data()), t.shape,
                                    torch::TensorOptions().dtype(scalar_types().at(t.dtype)));
        auto owned = raw.to(scalar_types().at(dtypes[i])).clone();  // own the memory
        if (keyword)
            by_name.emplace(t.name, owned);
        else
            inputs.emplace_back(owned);
    }
    const auto start = Clock::now();
    const c10::IValue result = keyword ? module.get_method("forward")({}, by_name) : module.forward(inputs);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<at::Tensor> tensors;
    flatten(result, tensors);
    if (tensors.size() != names.size())
        throw std::runtime_error("the model returned " + std::to_string(tensors.size()) +
                                 " tensors, the signature declares " + std::to_string(names.size()));
    std::vector<exchange::Tensor> outputs;
    for (size_t j = 0; j < tensors.size(); ++j) outputs.push_back(to_exchange(names[j], tensors[j]));
    return outputs;
}

std::string message(const std::exception& e) {
    if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
    return e.what();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6 || std::string(argv[4]) != "--dtypes") {
        std::cerr << "usage: " << argv[0] << " MODEL INPUT_DIR OUTPUT_DIR --dtypes D1,D2,... [--keyword] [OUTPUT_NAME ...]\n";
        return 2;
    }
    const std::vector<std::string> dtypes = split(argv[5], ',');
    for (const auto& d : dtypes) {
        if (!scalar_types().count(d)) {
            std::cerr << "unknown input dtype " << d << "\n";
            return 2;
        }
    }
    const bool keyword = argc > 6 && std::string(argv[6]) == "--keyword";
    const std::vector<std::string> names(argv + (keyword ? 7 : 6), argv + argc);
    std::vector<exchange::Set> sets;
    try {
        sets = exchange::read_sets(argv[2]);
    } catch (const std::exception& e) {
        std::cerr << "cannot read the input sets: " << e.what() << "\n";
        return 2;
    }

    c10::InferenceMode no_autograd;
    torch::jit::Module module;
    const auto load_start = Clock::now();
    try {
        module = torch::jit::load(argv[1]);
        module.eval();
    } catch (const std::exception& e) {
        std::cerr << "torch::jit::load failed: " << message(e) << "\n";
        return 1;
    }
    const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

    const exchange::json runtime = {{"name", "libtorch"},
                                    {"torch", TORCH_VERSION},
                                    {"threads", std::to_string(at::get_num_threads())},
                                    {"compiler", __VERSION__}};
    const auto run = [&](const exchange::Set& set, double& seconds) {
        return run_set(module, set, dtypes, names, keyword, seconds);
    };
    const auto why = [](const std::exception& e) { return message(e); };
    return exchange::answer_all(argv[3], sets, run, why, runtime, load_seconds, exchange::read_profile(argv[2]));
}
