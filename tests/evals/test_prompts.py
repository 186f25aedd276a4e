from june_pipelines.evals.datasets import load_problems
from june_pipelines.evals.prompts import (
    HUMANEVAL_STOP,
    build_request,
    completion_from_answer,
    extract_code,
)


def test_humaneval_base_prompt_is_the_header_with_standard_stops() -> None:
    problem = load_problems("humaneval", limit=1)[0][0]
    request = build_request(problem, "base")
    assert request.prompt == problem.prompt and not request.messages
    assert request.stop == HUMANEVAL_STOP


def test_mbpp_base_prompt_is_the_standard_three_shot(mbpp_source: str) -> None:
    problems, few_shot = load_problems("mbpp", mbpp_source, limit=1)
    request = build_request(problems[0], "base", few_shot)
    assert request.prompt is not None
    assert request.prompt.count("[BEGIN]") == 4 and request.prompt.count("[DONE]") == 3
    assert request.prompt.startswith(
        f"You are an expert Python programmer, and here is your task: {few_shot[0].description} "
        "Your code should pass these tests:\n\n"
    )
    assert request.prompt.endswith(problems[0].tests_shown[-1] + "\n[BEGIN]\n")
    assert request.stop == ("[DONE]",)


def test_mbpp_chat_prompt_carries_the_shots_as_turns(mbpp_source: str) -> None:
    problems, few_shot = load_problems("mbpp", mbpp_source, limit=1)
    request = build_request(problems[0], "chat", few_shot)
    assert [m.role for m in request.messages] == ["user", "assistant"] * 3 + ["user"]
    assert request.messages[1].content.startswith("```python\n")


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    answer = "Here:\n```python\nimport math\n```\nand\n```python\ndef f(x):\n    return x\n```\nDone."
    assert extract_code(answer, "f") == "def f(x):\n    return x"
    assert extract_code("```\nprint(1)\n```", "f") == "print(1)"
    assert extract_code("def f():\n    return 1\n", "f") == "def f():\n    return 1"
    assert extract_code("```python\ndef f():\n    return 2", "f") == "def f():\n    return 2"  # unterminated


def test_chat_answer_becomes_a_completion_that_follows_the_prompt() -> None:
    problem = load_problems("humaneval", limit=1)[0][0]
    answer = f"```python\ndef {problem.entry_point}(numbers, threshold):\n    return False\n```"
    completion = completion_from_answer(problem, answer, "chat")
    program = problem.prompt + completion
    namespace: dict = {}
    exec(compile(program, "<program>", "exec"), namespace)
    assert namespace[problem.entry_point]([1.0], 0.5) is False
