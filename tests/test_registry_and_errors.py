import pytest

from benchmark.errors import BenchmarkError, unknown_name
from benchmark.registry import Registry


def test_unknown_name_lists_close_and_available_names():
    err = unknown_name("method", "hearding", ["herding", "random", "kcenter"])
    message = str(err)
    assert message.startswith("unknown method 'hearding' (did you mean herding?)")
    assert "available: herding, kcenter, random" in message
    assert "\n" not in message


def test_registry_get_register_and_patterns():
    reg: Registry[int] = Registry("thing")
    reg.register("convnet_d1", 1)
    reg.register("convnet_d2", 2)
    reg.register("mlp", 3)
    assert reg.get("mlp") == 3
    assert reg.names("convnet_*") == ["convnet_d1", "convnet_d2"]
    with pytest.raises(BenchmarkError, match="unknown thing 'convnet_d3'.*did you mean"):
        reg.get("convnet_d3")
    with pytest.raises(BenchmarkError, match="registered twice"):
        reg.register("mlp", 4)


def test_populators_run_once_on_first_read():
    calls = []
    reg: Registry[str] = Registry("x")
    reg.add_populator(lambda: (calls.append(1), reg.register("late", "v")))
    assert calls == []
    assert reg.get("late") == "v"
    assert reg.names() == ["late"]
    assert calls == [1]


def test_error_message_is_one_line():
    assert str(BenchmarkError("a\n  multi   line\nmessage")) == "a multi line message"
