"""CIFAR from a local copy in torchvision's format: read exactly, prepared like every data set,
clear errors when the copy is missing or tampered with; ResNet-20 has He et al.'s shape."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from cifar_fixture import write_cifar

from asam_theory.data import load_dataset
from asam_theory.data.cifar import MissingDataError, expected_files, raw_cifar
from asam_theory.experiments.models import ResNet20, make_model


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("cifar")
    return base, write_cifar(base, "cifar10"), write_cifar(base, "cifar100", 200, 100, seed=1)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_reads_the_batches_exactly(root, name) -> None:
    base, c10, c100 = root
    written = c10 if name == "cifar10" else c100
    xtr, ytr, xte, yte, labels = raw_cifar(name, base)
    assert np.array_equal(xtr, written["x_train"]) and np.array_equal(ytr, written["y_train"])
    assert np.array_equal(xte, written["x_test"]) and np.array_equal(yte, written["y_test"])
    assert len(labels) == (10 if name == "cifar10" else 100) and labels[0] == "class0"


def test_prepared_like_every_data_set(root) -> None:
    base, written, _ = root
    ds = load_dataset("cifar10", root=base, seed=2, label_noise=0.2)
    assert ds.sizes() == {"train": 240, "val": 60, "test": 100}
    assert ds.input_shape == (3, 32, 32) and ds.n_features == 3072 and ds.n_classes == 10
    assert np.allclose(ds.x_train.mean(0), 0.0, atol=1e-10)
    assert np.array_equal(ds.y_test, written["y_test"])
    assert np.array_equal(ds.y_train != ds.y_train_clean, ds.noisy)
    assert ds.noisy.any()  # 20 % of 240 labels: P(no flip) = 0.8^240 < 1e-23


def test_missing_copy_names_root_and_the_expected_files(tmp_path, root) -> None:
    with pytest.raises(MissingDataError, match="root is required"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match=r"root=.*data_batch_1.*test_batch.*batches\.meta"):
        load_dataset("cifar10", root=tmp_path)
    base, _, _ = root
    partial = tmp_path / "partial"
    (partial / "cifar-100-python").mkdir(parents=True)
    (partial / "cifar-100-python" / "train").write_bytes(
        (base / "cifar-100-python" / "train").read_bytes())
    with pytest.raises(FileNotFoundError, match="missing cifar-100-python/test, "
                                                "cifar-100-python/meta"):
        raw_cifar("cifar100", partial)
    assert expected_files("cifar100") == ["cifar-100-python/train", "cifar-100-python/test",
                                          "cifar-100-python/meta"]


def test_a_tampered_pickle_is_refused(tmp_path, root) -> None:
    base, _, _ = root
    bad = tmp_path / "bad" / "cifar-10-batches-py"
    bad.mkdir(parents=True)
    for f in expected_files("cifar10"):
        (bad / f.split("/")[1]).write_bytes((base / f).read_bytes())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (bad / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"names (__builtin__|builtins)\.print"):
        raw_cifar("cifar10", tmp_path / "bad")


def test_root_and_split_arguments_apply_where_they_mean_something(tmp_path, root) -> None:
    with pytest.raises(ValueError, match="root applies"):
        load_dataset("digits", root=tmp_path)
    with pytest.raises(ValueError, match="test_size"):
        load_dataset("cifar10", root=root[0], test_size=50)


def test_resnet20_has_he_et_al_shape() -> None:
    net = make_model("resnet20", (3, 32, 32), 10, seed=0)
    assert isinstance(net, ResNet20)
    # option-A shortcuts are parameter-free: 269,722 parameters for 10 classes (the paper's
    # "0.27M"; akamaster/pytorch_resnet_cifar10 prints the same count)
    assert sum(p.numel() for p in net.parameters()) == 269_722
    weighted = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == 20
    widths = sorted({m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)})
    assert widths == [16, 32, 64]
    out = net(torch.randn(4, 3072))
    assert out.shape == (4, 10)
    assert sum(p.numel() for p in make_model("resnet20", (3, 32, 32), 100).parameters()) \
        == 269_722 + 90 * (64 + 1)  # 90 more classes: 64 weights and a bias each
    with pytest.raises(ValueError, match="input_shape"):
        make_model("resnet20", (40,), 10)


def test_resnet20_learns_the_fixture(root) -> None:
    """A few SGD steps on the generated images lower the training loss (end to end: read,
    prepare, model, backward)."""
    ds = load_dataset("cifar10", root=root[0], seed=0)
    x = torch.as_tensor(ds.x_train, dtype=torch.float32)
    y = torch.as_tensor(ds.y_train)
    net = make_model("resnet20", ds.input_shape, ds.n_classes, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[:128]), y[:128])
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < losses[0]
