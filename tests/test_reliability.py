"""Shared models under concurrent use, and memory over many explanations."""

import gc
import threading

import pytest
import torch

import explainers
import models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite0():
    return models.load_image_model()


def test_four_threads_on_one_model_match_single_threaded(lite0):
    jobs = [("cat", "grad_cam", 285), ("coffee", "grad_cam_plus_plus", 967), ("rocket", "saliency", None),
            ("flower", "grad_cam", 985)]
    inputs = {name: lite0.preprocess(models.load_sample(name)) for name, _, _ in jobs}
    expected = [explainers.explain(lite0.net, inputs[n], m, t).maps for n, m, t in jobs]
    flags = [p.requires_grad for p in lite0.net.parameters()]
    got: list[torch.Tensor | BaseException | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def work(i: int) -> None:
        name, method, target = jobs[i]
        barrier.wait()
        try:
            for _ in range(3):
                got[i] = explainers.explain(lite0.net, inputs[name], method, target).maps
        except BaseException as err:  # reported below
            got[i] = err

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result, reference in zip(got, expected):
        assert isinstance(result, torch.Tensor), result
        torch.testing.assert_close(result, reference, rtol=1e-5, atol=1e-6)
    assert [p.requires_grad for p in lite0.net.parameters()] == flags
    assert not lite0.net.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in lite0.net.modules())


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_200_explanations_do_not_grow_memory(lite0):
    x = lite0.preprocess(models.load_sample("cat"))
    methods = ["grad_cam", "grad_cam_plus_plus", "cam", "saliency"]
    # Earlier tests in this process leave cyclic garbage (AppTest sessions holding page results, ~95 MB
    # after the Text page tests): collect it before the warm-up, or its release at the measurement's
    # gc.collect() and the allocator refilling afterwards read as growth.
    gc.collect()
    for method in methods * 5:  # warm-up: allocator pools, lazy inits
        explainers.explain(lite0.net, x, method)
    gc.collect()
    before = rss_mb()
    for i in range(200):
        explainers.explain(lite0.net, x, methods[i % len(methods)], target=int(i % 1000))
    gc.collect()
    growth = rss_mb() - before
    print(f"RSS growth over 200 explanations: {growth:.1f} MB")
    assert growth < 50, growth
