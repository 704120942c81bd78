from harness.data.types import Row
from harness.evaluation.fewshot import draw_support


def rows(prefix: str, n: int, images: int) -> list[Row]:
    return [Row(f"{prefix}{i}", f"img{i % images}", f"q{i}", ("a",) * 10, "other") for i in range(n)]


def test_support_depends_only_on_task_seed_and_query():
    pool = rows("s", 50, 25)
    query = Row("q7", "img3", "q", ("a",) * 10, "other")
    first = draw_support("t", 0, query, pool, 4)
    assert draw_support("t", 0, query, pool, 4) == first
    assert draw_support("t", 1, query, pool, 4) != first
    assert draw_support("u", 0, query, pool, 4) != first
    assert len({r.image for r in first}) == 4  # each support example has its own image
    assert "img3" not in {r.image for r in first}  # never the query's own image


def test_query_never_in_its_own_support():
    pool = rows("s", 6, 6)
    for query in pool:
        support = draw_support("t", 0, query, pool, 5)
        assert query.id not in {r.id for r in support} and len(support) == 5


def test_naming_episodes_are_drawn_by_the_evaluation_seed():
    from harness import registry
    from harness.evaluation import tasks

    task = registry.TASKS.get("miniimagenet-open-tiny")
    dataset = tasks.load(task)
    assert tasks.rows(task, dataset, 0) == tasks.rows(task, dataset, 0)
    assert tasks.rows(task, dataset, 0) != tasks.rows(task, dataset, 1)
    easy = registry.TASKS.get("easyvqa-tiny")  # other kinds: fixed rows, the seed only draws support
    assert tasks.rows(easy, tasks.load(easy), 0) == tasks.rows(easy, tasks.load(easy), 1)
