"""Stand-in for upstream's llmapi `helpers.py`: request parsing the stand-in `model.py` imports.

Upstream's model.py does `from helpers import ...`, so a repository that copies model.py without
helpers.py fails to load; the stand-in keeps that shape so the test catches a missing file.
"""

import triton_python_backend_utils as pb_utils


def get_input_scalar(request, name, default=None):
    """A per-request scalar sent as a [1] tensor (the model does not batch); None when absent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    array = tensor.as_numpy()
    if array.size != 1:
        raise pb_utils.TritonModelException(f"Expected a scalar tensor for tensor {name}")
    return array.reshape(-1)[0]


def get_prompt(request):
    """The prompt; like upstream, only a 1-D text_input (one prompt) is accepted."""
    tensor = pb_utils.get_input_tensor_by_name(request, "text_input")
    if tensor is None:
        raise pb_utils.TritonModelException("text_input is missing from the request")
    array = tensor.as_numpy()
    if len(array.shape) > 1:
        raise pb_utils.TritonModelException("The current implementation only supports text_input being a 1D tensor.")
    prompt = array[0]
    return prompt.decode("utf-8") if isinstance(prompt, bytes) else str(prompt)
