#pragma once
/// @file
/// A trained C++ model as a TorchScript file that runs without ohem (`ohem-score --export`): its weights
/// and its forward, loadable by `torch::jit::load` in C++ and `torch.jit.load` in Python.
///
/// How: LibTorch's tracer records the model's forward on an example batch into a graph. The graph's
/// `self` is a TorchScript module that mirrors the C++ module tree (same child names, the same parameter
/// and buffer tensors), so the weights are the module's attributes (`backbone.conv1.weight`, ...), not
/// constants, and the file can also start a run (`--init-from`). The forward is recorded in eval mode
/// (BatchNorm uses its running statistics) and for inputs of any batch size and image size: the models
/// here have no control flow that depends on the input. The test transform is not part of the graph;
/// `export_torchscript` stores it, with the run's configuration, as the extra file "ohem.json".

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <sstream>
#include <string>

namespace ohem_examples {

namespace detail {

/// Registers the parameters, buffers and children of `from` (recursively) in `to` under their names.
inline void mirror_module(torch::nn::Module& from, torch::jit::Module& to,
                          const std::shared_ptr<torch::jit::CompilationUnit>& unit) {
  for (const auto& p : from.named_parameters(/*recurse=*/false))
    to.register_parameter(p.key(), p.value(), false);
  for (const auto& b : from.named_buffers(/*recurse=*/false)) to.register_buffer(b.key(), b.value());
  for (const auto& c : from.named_children()) {
    torch::jit::Module child(c10::QualifiedName("__torch__.ohem_export.Module"), unit, /*shouldMangle=*/true);
    mirror_module(*c.value(), child, unit);
    to.register_module(c.key(), child);
  }
}

}  // namespace detail

/// Returns `module`'s forward (`forward`: scores of a batch) traced on `example` into a TorchScript
/// module whose attributes are `module`'s parameters and buffers (shared, not copied: save it before the
/// weights change). `module` must be on the CPU; it is put in eval mode.
///
/// Example: `export_torchscript(*net, [&](const torch::Tensor& x) { return net->forward(x); },
/// torch::rand({1, 3, 224, 224})).save("model.pt");`
inline torch::jit::Module export_torchscript(
    torch::nn::Module& module, const std::function<torch::Tensor(const torch::Tensor&)>& forward,
    const torch::Tensor& example) {
  for (const auto& p : module.parameters())
    TORCH_CHECK(p.device().is_cpu(), "export_torchscript: the module must be on the CPU, a parameter is on ",
                p.device());
  module.eval();
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module script(c10::QualifiedName("__torch__.ohem_export.Model"), unit, /*shouldMangle=*/true);
  detail::mirror_module(module, script, unit);
  torch::NoGradGuard no_grad;
  auto traced = torch::jit::tracer::trace(
      {example},
      [&](torch::jit::Stack inputs) -> torch::jit::Stack { return {forward(inputs.at(0).toTensor())}; },
      [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/true,
      /*force_outplace=*/false, &script);
  auto method =
      unit->create_function(c10::QualifiedName(*script.type()->name(), "forward"), traced.first->graph);
  script.type()->addMethod(method);
  return script;
}

/// Returns the bytes of a TorchScript file holding `script` and the extra file "ohem.json" = `info`
/// (Python: `torch.jit.load(path, _extra_files={"ohem.json": ""})`).
inline std::string torchscript_bytes(const torch::jit::Module& script, const nlohmann::json& info) {
  std::ostringstream out;
  torch::jit::ExtraFilesMap extra{{"ohem.json", info.dump(2)}};
  script.save(out, extra);
  return out.str();
}

}  // namespace ohem_examples
