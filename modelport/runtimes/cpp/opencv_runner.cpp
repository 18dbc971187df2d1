// modelport's opencv runtime: import an ONNX artifact with OpenCV DNN and run every input set.
//
//   opencv_runner MODEL INPUT_DIR OUTPUT_DIR [OUTPUT_NAME ...]
//   opencv_runner --check MODEL          (import the graph only)
//
// The graph runs on OpenCV's own backend on the CPU. Inputs are set by name; the outputs are
// fetched by the ONNX graph's output names. OpenCV computes in float32 and its Mats have at least
// two dimensions, so an output comes back with OpenCV's shape; modelport restores the signature's
// shape when the element count matches (modelport/runtimes/opencv.py).
// When a set fails inside a layer, its error names the first layer that throws:
// "OpenCV layer NAME of type TYPE failed: MESSAGE".
// Exit 0 with sets.json written; exit 2 when the inputs or arguments cannot be read; exit 3 when
// OpenCV cannot import the graph (its message on stderr, naming the node and operator).
#include <chrono>
#include <iostream>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "exchange.hpp"

namespace {

using Clock = std::chrono::steady_clock;

cv::Mat to_mat(const exchange::Tensor& t) {
    if (t.dtype != "float32") throw std::runtime_error("input " + t.name + " is " + t.dtype + ", not float32");
    std::vector<int> sizes(t.shape.begin(), t.shape.end());
    if (sizes.empty()) sizes.push_back(1);  // a 0-d tensor: OpenCV has no 0-d Mat
    cv::Mat view(static_cast<int>(sizes.size()), sizes.data(), CV_32F, const_cast<char*>(t.bytes.data()));
    return view.clone();
}

exchange::Tensor from_mat(const std::string& name, const cv::Mat& mat) {
    std::string dtype;
    switch (mat.depth()) {
        case CV_32F: dtype = "float32"; break;
        case CV_64F: dtype = "float64"; break;
        case CV_32S: dtype = "int32"; break;
        case CV_8U: dtype = "uint8"; break;
        default: throw std::runtime_error("output " + name + " has OpenCV depth " + std::to_string(mat.depth()));
    }
    if (mat.channels() != 1) throw std::runtime_error("output " + name + " has " + std::to_string(mat.channels()) +
                                                      " channels");
    const cv::Mat dense = mat.isContinuous() ? mat : mat.clone();
    exchange::Tensor out{name, dtype, {}, {}};
    for (int i = 0; i < dense.dims; ++i) out.shape.push_back(dense.size[i]);
    const char* data = reinterpret_cast<const char*>(dense.data);
    out.bytes.assign(data, data + dense.total() * dense.elemSize());
    return out;
}

// Net::forward(name) runs every layer up to that one, in order: the first layer whose forward throws
// is found by bisection over the layer list. Only called after a set failed.
std::string first_failing_layer(cv::dnn::Net& net, const std::string& error) {
    const std::vector<std::string> layers = net.getLayerNames();
    const auto fails = [&](size_t i) {
        try {
            net.forward(layers[i]);
            return false;
        } catch (const cv::Exception&) {
            return true;
        }
    };
    if (layers.empty() || !fails(layers.size() - 1)) return error;
    size_t lo = 0, hi = layers.size() - 1;  // layers[hi] fails
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (fails(mid)) hi = mid; else lo = mid + 1;
    }
    const auto layer = net.getLayer(net.getLayerId(layers[hi]));
    return "OpenCV layer " + layers[hi] + " of type " + layer->type + " failed: " + error;
}

std::vector<exchange::Tensor> run_set(cv::dnn::Net& net, const exchange::Set& set,
                                      const std::vector<std::string>& names, double& seconds) {
    for (const auto& t : set.tensors) net.setInput(to_mat(t), t.name);
    std::vector<cv::Mat> mats;
    const auto start = Clock::now();
    try {
        net.forward(mats, names);
    } catch (const cv::Exception& e) {
        throw std::runtime_error(first_failing_layer(net, exchange::one_line(e.what())));
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (mats.size() != names.size())
        throw std::runtime_error("OpenCV returned " + std::to_string(mats.size()) + " outputs, the signature declares " +
                                 std::to_string(names.size()));
    std::vector<exchange::Tensor> outputs;
    for (size_t j = 0; j < mats.size(); ++j) outputs.push_back(from_mat(names[j], mats[j]));
    return outputs;
}

// The graph on OpenCV's own CPU backend; false (the reason on stderr) when OpenCV cannot import it.
bool import_net(const char* path, cv::dnn::Net& net) {
    try {
        net = cv::dnn::readNetFromONNX(path);
        if (net.empty()) throw std::runtime_error("OpenCV read an empty network");
    } catch (const std::exception& e) {
        std::cerr << "import failed: " << exchange::one_line(e.what(), 2000) << "\n";
        return false;
    }
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    cv::dnn::Net net;
    if (argc == 3 && std::string(argv[1]) == "--check") return import_net(argv[2], net) ? 0 : 3;
    if (argc < 5) {
        std::cerr << "usage: " << argv[0] << " MODEL INPUT_DIR OUTPUT_DIR OUTPUT_NAME...\n";
        return 2;
    }
    const std::vector<std::string> names(argv + 4, argv + argc);
    std::vector<exchange::Set> sets;
    try {
        sets = exchange::read_sets(argv[2]);
    } catch (const std::exception& e) {
        std::cerr << "cannot read the input sets: " << e.what() << "\n";
        return 2;
    }

    const auto load_start = Clock::now();
    if (!import_net(argv[1], net)) return 3;
    const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

    const exchange::json runtime = {{"name", "opencv"},
                                    {"opencv", CV_VERSION},
                                    {"threads", std::to_string(cv::getNumThreads())},
                                    {"compiler", __VERSION__}};
    const auto run = [&](const exchange::Set& set, double& seconds) { return run_set(net, set, names, seconds); };
    const auto why = [](const std::exception& e) { return std::string(e.what()); };
    return exchange::answer_all(argv[3], sets, run, why, runtime, load_seconds, exchange::read_profile(argv[2]));
}
