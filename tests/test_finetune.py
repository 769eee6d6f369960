"""Fine-tuning (issue 23, points 1-3, 8): pretrained weights in (files and runs), the weights'
preprocessing, freezing and learning-rate scales, and predictions from a torchvision file or an
ONNX export. Expected values come from torchvision itself or are derived by hand in the test."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.deploy import export_model, predict
from cnnzoo.errors import CnnzooError, DataFileError
from cnnzoo.models._weights import WeightsMismatchError, adapt_input_conv, load_pretrained, unwrap_state_dict
from cnnzoo.training import TrainConfig, Trainer, evaluate, load_checkpoint, train
from cnnzoo.training.finetune import FineTuneError, frozen_names, param_groups
from test_train import data_dir  # noqa: F401 - the tiny MNIST-like data set (160 train / 64 test)

TINY = dict(dataset="mnist", epochs=2, batch_size=32, lr=0.05, input_size=28, seed=1, amp="fp32", flip=False,
            pad=1, warmup_epochs=0.0, limit_test=32, channels_last=False)


@pytest.fixture(scope="module")
def tv_resnet18(tmp_path_factory):
    """torchvision's resnet18 with random weights, saved as a plain state_dict (named as torchvision
    names its ImageNet V1 file), and the module itself."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "resnet18-f37072fd.pth"
    torch.save(tv.state_dict(), path)
    return path, tv


# --- weights in ---------------------------------------------------------------------------------

def test_adapt_input_conv_by_hand():
    w = torch.arange(2 * 3 * 1 * 2, dtype=torch.float32).view(2, 3, 1, 2)   # (O=2, RGB, 1, 2)
    r, g, b = w[:, 0], w[:, 1], w[:, 2]
    assert torch.equal(adapt_input_conv(1, w)[:, 0], r + g + b)             # grey: the sum of the RGB filters
    five = adapt_input_conv(5, w)                                           # C > 3: R G B R G, times 3/5
    for c, src in enumerate((r, g, b, r, g)):
        assert torch.allclose(five[:, c], src * 0.6)
    assert torch.equal(adapt_input_conv(3, w), w)
    with pytest.raises(WeightsMismatchError, match="only RGB"):
        adapt_input_conv(1, w[:, :2])


def test_a_torchvision_file_loads_strictly_and_gives_torchvisions_outputs(tv_resnet18, tmp_path):
    path, tv = tv_resnet18
    wrapped = tmp_path / "ddp.pth"                  # a training framework's checkpoint of a DDP model
    torch.save({"model": {"module." + k: v for k, v in tv.state_dict().items()}, "epoch": 3}, wrapped)
    x = torch.randn(2, 3, 64, 64)
    for f in (path, wrapped):
        m = cnnzoo.create_model("resnet18").eval()
        notes = load_pretrained(m, unwrap_state_dict(torch.load(f, weights_only=True), f), str(f))
        with torch.no_grad():
            assert torch.allclose(m(x), tv(x), atol=1e-5)
        assert any("'module.' prefix" in n for n in notes) == (f == wrapped)


def test_other_class_count_reinitialises_the_head_and_grey_input_adapts_the_first_conv(tv_resnet18):
    path, tv = tv_resnet18
    state = torch.load(path, weights_only=True)
    m = cnnzoo.create_model("resnet18", num_classes=5, in_chans=1).eval()
    fresh_fc = m.fc.weight.clone()
    notes = load_pretrained(m, state, "r18.pth")
    assert torch.equal(m.fc.weight, fresh_fc)                               # the model's own initialisation kept
    assert "has 1000 outputs, this model 5: re-initialised" in notes[0]
    assert "adapted to the sum of its RGB filters" in notes[1]
    assert torch.equal(m.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    # a grey image through the adapted conv = the same image replicated to RGB through torchvision's
    grey = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        ours = m.forward_features(grey)
        theirs = torch.nn.Sequential(*list(tv.children())[:-2])(grey.expand(-1, 3, -1, -1))
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_anything_else_is_the_mismatch_error(tmp_path):
    state = cnnzoo.create_model("resnet34").state_dict()
    with pytest.raises(WeightsMismatchError, match="resnet34"):
        load_pretrained(cnnzoo.create_model("resnet18", num_classes=5), state, "r34.pth")


# --- stages and freezing ---------------------------------------------------------------------------

def test_freeze_names_follow_each_familys_stages():
    r18 = cnnzoo.create_model("resnet18")
    assert frozen_names(r18, 2) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    assert "fc" not in frozen_names(r18, "backbone") and "layer4" in frozen_names(r18, "backbone")
    vgg = cnnzoo.create_model("vgg11")           # Table 1, config A: conv blocks of 1, 1, 2, 2, 2 convs
    convs = [[type(vgg.get_submodule(n)).__name__ for n in s].count("Conv2d") for s in vgg.stem_and_stages()[1]]
    assert convs == [1, 1, 2, 2, 2]
    assert frozen_names(vgg, "backbone")[-1] == "classifier.5"             # FC6, FC7 frozen, FC8 trains
    g = cnnzoo.create_model("googlenet_paper")                              # aux heads are classifiers
    assert not {"aux1", "aux2", "fc"} & set(frozen_names(g, "backbone"))
    with pytest.raises(FineTuneError, match="has 4 stages"):
        frozen_names(r18, 5)
    with pytest.raises(FineTuneError, match="defines no stages"):
        frozen_names(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3)), 1)


def _trainer(data_dir, out, **kw):
    return Trainer(TrainConfig(model="lenet5_modern", data_dir=data_dir, model_kwargs={"norm": True},
                               **{**TINY, **kw}), out, progress=False)


def test_frozen_parameters_and_buffers_are_bit_identical_after_training(data_dir, tmp_path):
    t = _trainer(data_dir, tmp_path / "f", freeze=2)                        # C1+S2 and C3+S4 frozen, C5 trains
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.fit()
    after = t.model.state_dict()
    frozen = [k for k in before if k.startswith(("c1.", "s2.", "c3.", "s4."))]
    assert "c1.1.running_mean" in frozen and "c3.1.num_batches_tracked" in frozen
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["c5.1.running_mean"], after["c5.1.running_mean"])     # BN of C5 learned
    assert not torch.equal(before["c5.0.weight"], after["c5.0.weight"])
    t.model.train()(torch.zeros(2, 1, 28, 28))                                          # the trainer's call
    assert t.model.c1.training is False and t.model.c5.training is True


def test_unfreeze_epoch_trains_everything_from_that_epoch(data_dir, tmp_path):
    t = _trainer(data_dir, tmp_path / "u", freeze="backbone", unfreeze_epoch=2)
    before = t.model.c1[0].weight.clone()
    t.train_epoch()                                                         # epoch 1: frozen
    assert torch.equal(before, t.model.c1[0].weight)
    t.epoch, t.step, t.partial = 1, 0, None
    assert "unfrozen" in t.ft.on_epoch(1)
    t.train_epoch()                                                         # epoch 2: everything trains
    assert not torch.equal(before, t.model.c1[0].weight) and t.model.c1[0].weight.requires_grad


def test_backbone_lr_scale_sets_each_groups_learning_rate(data_dir, tmp_path):
    t = _trainer(data_dir, tmp_path / "s", backbone_lr_scale=0.1, schedule="constant")
    lr = t.set_lr(0, 0)
    head = {id(p) for p in t.model.output.parameters()}
    for g in t.optimizer.param_groups:
        in_head = {id(p) in head for p in g["params"]}
        assert len(in_head) == 1                                            # a group is all head or all backbone
        assert g["lr"] == pytest.approx(lr if in_head.pop() else 0.1 * lr)
    assert len(param_groups(t.model, 0.0)) == 2                             # no scale: decay / no decay as before


# --- runs as sources, preprocessing, records --------------------------------------------------------

def test_a_run_as_source_gives_its_model_and_recipe_and_its_weights(data_dir, tmp_path):
    src = train("lenet5_modern", out=tmp_path / "src", progress=False, data_dir=data_dir,
                model_kwargs={"norm": True}, **{**TINY, "pad": 0, "epochs": 1})
    r = train(None, weights=str(tmp_path / "src"), out=tmp_path / "ft", progress=False, data_dir=data_dir,
              dataset="mnist", freeze="backbone", epochs=1, limit_test=32)
    cfg = r.summary["config"]
    assert r.summary["model"] == "lenet5_modern" and cfg["pad"] == 0 and cfg["flip"] is False
    assert cfg["model_kwargs"] == {"norm": True} and cfg["lr"] == TINY["lr"]
    a = load_checkpoint(tmp_path / "src")["state_dict"]
    b = load_checkpoint(tmp_path / "ft")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("output."))     # the frozen backbone
    ck = load_checkpoint(tmp_path / "ft")
    assert ck["mean"] == load_checkpoint(tmp_path / "src")["mean"]                     # the run's statistics
    assert ck["preprocess"]["source"] == f"the run {tmp_path / 'src'}"


def test_a_torchvision_file_trains_with_imagenet_statistics_recorded(tv_resnet18, data_dir, tmp_path, capsys):
    path, _ = tv_resnet18
    r = train("resnet18", weights=str(path), out=tmp_path / "r", data_dir=data_dir, progress=True, width=1.0,
              channels=3, freeze="backbone", **{**TINY, "epochs": 1, "input_size": 32, "limit_test": None})
    t = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    ck = load_checkpoint(tmp_path / "r")
    assert ck["mean"] == pytest.approx(t.mean) and ck["std"] == pytest.approx(t.std)
    assert ck["preprocess"]["resize"] == round(32 * t.resize_size[0] / t.crop_size[0])     # 37: 224 -> 256
    assert r.summary["preprocess"]["mean"] == ck["mean"] and r.summary["finetune"]["freeze"] == "backbone"
    out = capsys.readouterr().out
    assert "has 1000 outputs, this model 10: re-initialised" in out and "augmentation: random crop (pad 1)" in out
    assert evaluate(tmp_path / "r", data_dir=data_dir)["top1"] == pytest.approx(r.final["test_acc"])


@pytest.mark.parametrize("args, words", [
    (["--weights", "nope.pth"], "--weights file not found: nope.pth"),
    (["--weights", "{w}", "--freeze", "9"], "--freeze 9: LeNet5 has 3 stages"),
    (["--freeze", "1", "--unfreeze-epoch", "3"], "--unfreeze-epoch 3: give an epoch from 2 to the run's 2"),
    (["--unfreeze-epoch", "2"], "needs --freeze"),
])
def test_bad_fine_tuning_options_are_one_line_and_exit_2(args, words, data_dir, tmp_path, capsys):
    w = tmp_path / "w.pth"
    torch.save(cnnzoo.create_model("lenet5_modern", norm=True).state_dict(), w)      # its recipe's model
    argv = ["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "2", "--quiet",
            "--out", str(tmp_path / "run")] + [a.format(w=w) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()                                 # nothing written


# --- predictions -----------------------------------------------------------------------------------

def test_predict_with_a_torchvision_file_gives_torchvisions_top5(tv_resnet18, tmp_path):
    path, tv = tv_resnet18
    img = tmp_path / "photo.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(img, quality=95)
    [p] = predict("resnet18", [img], topk=5, weights=path)
    w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1      # torchvision's own pipeline, independently
    with torch.no_grad():
        probs = tv(w.transforms()(Image.open(img).convert("RGB"))[None]).softmax(1)[0]
    q, idx = probs.topk(5)
    assert [name for name, _ in p["top"]] == [w.meta["categories"][i] for i in idx]
    assert [v for _, v in p["top"]] == pytest.approx(q.tolist(), abs=1e-5)


def test_an_onnx_export_carries_classes_and_preprocessing_and_predicts_as_the_run(data_dir, tmp_path):
    train("lenet5_modern", out=tmp_path / "run", progress=False, data_dir=data_dir, **{**TINY, "epochs": 1})
    rep = export_model(str(tmp_path / "run"), "onnx", tmp_path / "m.onnx", data_dir=data_dir)
    ck = load_checkpoint(tmp_path / "run")
    meta = json.loads((tmp_path / "m.onnx.json").read_text())["metadata"]
    assert meta["classes"] == ck["classes"] and meta["mean"] == ck["mean"] and meta["input_size"] == [1, 28, 28]
    assert rep.metadata == meta
    import onnx
    props = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props["cnnzoo.std"] == ck["std"] and props["cnnzoo.classes"] == ck["classes"]
    img = tmp_path / "x.png"
    Image.new("L", (40, 30), 200).save(img)
    [a] = predict(tmp_path / "m.onnx", [img], topk=3)
    [b] = predict(tmp_path / "run", [img], topk=3)
    assert [n for n, _ in a["top"]] == [n for n, _ in b["top"]]
    assert [v for _, v in a["top"]] == pytest.approx([v for _, v in b["top"]], abs=1e-5)


def test_predict_refuses_fresh_weights_and_foreign_onnx(tmp_path):
    with pytest.raises(CnnzooError, match="fresh weights"):
        predict("resnet18", ["a.png"])
    import onnx
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", io[:1], io[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "f.onnx"))                                 # an ONNX file from elsewhere
    with pytest.raises(CnnzooError, match="carries no cnnzoo metadata"):
        predict(tmp_path / "f.onnx", ["a.png"])
    with pytest.raises(DataFileError):
        predict("resnet18", ["a.png"], weights=tmp_path / "none.pth")


# --- watching training -------------------------------------------------------------------------------

def test_tensorboard_event_files_hold_every_epochs_numbers(data_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cnnzoo.training.events import tag

    r = train("lenet5_modern", out=tmp_path / "tb", progress=False, data_dir=data_dir, **TINY)
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"loss/train", "loss/test", "top1/train", "top1/test", "lr"} <= set(acc.Tags()["scalars"])
    for key in ("train_loss", "test_acc", "lr"):
        events = acc.Scalars(tag(key))
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([row[key] for row in r.history], rel=1e-6)
    assert (tag("val_loss"), tag("val_acc"), tag("test_acc_tta")) == ("loss/val", "top1/val", "top1/test_tta")


def test_image_files_are_resized_by_the_weights_rule_in_training_and_eval(tv_resnet18, tmp_path):
    path, _ = tv_resnet18
    rng = np.random.default_rng(2)
    for split, n in (("train", 4), ("test", 1)):
        for cls in ("a", "b"):
            (tmp_path / "photos" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(
                    tmp_path / "photos" / split / cls / f"{i}.png")
    cfg = TrainConfig(model="resnet18", data_dir=str(tmp_path / "photos"), weights=str(path),
                      width=1.0, freeze="backbone", **{**TINY, "dataset": "folder", "input_size": 32, "epochs": 1})
    t = Trainer(cfg, tmp_path / "run", progress=False)
    # torchvision's ImageNet rule at 32: Resize(round(32 * 256 / 224) = 37) + CenterCrop(32), on the PIL image
    tf = torchvision.transforms.Compose([torchvision.transforms.Resize(37), torchvision.transforms.CenterCrop(32),
                                         torchvision.transforms.PILToTensor()])
    want = torch.stack([tf(Image.open(tmp_path / "photos" / "test" / c / "0.png").convert("RGB")) for c in "ab"])
    assert torch.equal(t.test.x, want)
    t.fit()
    res = evaluate(tmp_path / "run")                         # eval reads the folder by the run's recorded rule
    assert res["top1"] == pytest.approx(t.history[-1]["test_acc"]) and res["n"] == 2
