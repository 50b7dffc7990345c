from relia.core import hooks


def test_subscribers_run_in_order_once_each():
    calls = []

    @hooks.subscribe("test.thing.happened")
    def first(session, **payload):
        calls.append(("first", session, payload))

    hooks.subscribe("test.thing.happened")(first)  # registered again: still once

    @hooks.subscribe("test.thing.happened")
    def second(session, **payload):
        calls.append(("second", session, payload))

    hooks.emit("S", "test.thing.happened", id=7)
    assert calls == [("first", "S", {"id": 7}), ("second", "S", {"id": 7})]
    hooks.emit("S", "test.nobody.listens", id=1)
    assert len(hooks.subscribers("test.thing.happened")) == 2
