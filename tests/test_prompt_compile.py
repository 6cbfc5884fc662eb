import pytest

from lanterna.prompts.compile import (
    MissingVariablesError,
    compile_chat,
    compile_text,
    variables,
)


def test_text_variables():
    template = "Hi {{ name }}, about {{topic}} and {{name}} again"
    assert variables(template) == ["name", "topic"]
    assert compile_text(template, {"name": "Kim", "topic": 3}) == "Hi Kim, about 3 and Kim again"
    assert compile_text(template, {"name": "Kim"}) == "Hi Kim, about {{topic}} and Kim again"
    with pytest.raises(MissingVariablesError, match="topic"):
        compile_text(template, {"name": "Kim"}, strict=True)


def test_non_ascii_text_is_kept():
    assert (
        compile_text("{{이름}}님 안녕하세요 {{name}}", {"name": "민수"})
        == "{{이름}}님 안녕하세요 민수"
    )


def test_chat_placeholders_and_variables():
    messages = [
        {"role": "system", "content": "You help {{team}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{q}}"},
    ]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = compile_chat(messages, {"team": "ops", "q": "why?"}, {"history": history})
    assert out == [
        {"role": "system", "content": "You help ops."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "why?"},
    ]
    assert messages[0]["content"] == "You help {{team}}."  # input untouched
    with pytest.raises(MissingVariablesError) as info:
        compile_chat(messages, {"team": "ops"}, strict=True)
    assert info.value.names == ["history", "q"]
