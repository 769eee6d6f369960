"""cnnzoo.profile on models beyond the lecture's (issue 14): torchvision's whole classification zoo,
attention, einsum, batched matmuls, recurrent layers, gates, scripted and half-precision models,
ambiguous input sizes. Every expected figure is derived by hand in the test, read from torchvision's
weight metadata, or measured by torch.utils.flop_counter on a real run (which sees the aten matmuls)."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import ProfileOptionError, UnsupportedModelError, profile


class _EmptyOnMeta(TorchFunctionMode):
    """Parameters (made by ``torch.empty`` in every layer's ``__init__``) on the meta device; every other
    tensor a model makes while it is built stays real (regnet computes its widths with ``.tolist()``,
    maxvit and swin build index buffers), so any model builds in milliseconds."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.empty and kwargs.get("device") is None:
            kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


def _build(factory, real: bool = False) -> nn.Module:
    """``factory()`` with its parameters on meta; ``real``: then on the CPU, uninitialized (the
    figures never depend on weight values), shared tensors kept shared."""
    with _EmptyOnMeta():
        m = factory()
    if real:
        made: dict[int, torch.Tensor] = {}
        for mod in m.modules():
            for store in (mod._parameters, mod._buffers):
                for k, t in store.items():
                    if t is not None and t.is_meta:
                        if id(t) not in made:
                            e = torch.empty_like(t, device="cpu")
                            made[id(t)] = nn.Parameter(e, t.requires_grad) if isinstance(t, nn.Parameter) else e
                        store[k] = made[id(t)]
    return m.eval()


def _figures(p):
    """Every figure of a profile except the device it ran on."""
    return ([r.to_dict() for r in p.layers], p.totals, p.output_shapes, p.uncounted, p.input_shape,
            p.receptive_field, p.output_receptive_field, p.depth)


def _flop_counter_macs(model, *inputs) -> int:
    """MACs of a real run as torch.utils.flop_counter counts them (2 FLOPs per multiply-add of each aten
    mm/bmm/addmm/baddbmm/conv/sdpa call)."""
    with FlopCounterMode(display=False) as fc:
        model(*inputs)
    return fc.get_total_flops() // 2


# ---------------------------------------------------------------- fault 1: meta == real, every figure

@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_meta_equals_real_on_every_registry_model(name):
    m = _build(lambda: cnnzoo.create_model(name), real=True)
    c, _, side = m.default_input_size
    side = min(side, max(cnnzoo.model_info(name).min_input_size or 1, 32))   # cheap but valid
    assert _figures(profile(m, (c, side, side))) == _figures(profile(m, (c, side, side), real=True))


# torchvision's architectures at small inputs (MaxViT only runs at 224: its 7x7 partitions need 7 | H/32).
@pytest.mark.parametrize("name,side,kw", [
    ("shufflenet_v2_x0_5", 64, {}), ("swin_t", 64, {}), ("convnext_tiny", 64, {}), ("efficientnet_b0", 64, {}),
    ("maxvit_t", 224, {}), ("vit_b_16", 32, {"image_size": 32}), ("mobilenet_v3_small", 64, {}),
    ("regnet_y_400mf", 64, {}), ("inception_v3", 75, {"init_weights": False})])
def test_meta_equals_real_on_torchvision_models(name, side, kw):
    m = _build(lambda: torchvision.models.get_model(name, **kw), real=True)
    meta, real = profile(m, (3, side, side)), profile(m, (3, side, side), real=True)
    assert _figures(meta) == _figures(real) and not meta.uncounted


def test_shufflenet_channel_shuffle_runs_on_meta():
    # ShuffleNetV2's channel shuffle is view -> transpose -> contiguous() -> view: the meta run must lay
    # the contiguous() output out as torch does. 40,476,448 MACs is the real run's figure (issue 14).
    m = _build(torchvision.models.shufflenet_v2_x0_5)
    assert profile(m, (3, 224, 224)).totals.macs == 40_476_448


class _Contiguous(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        y = self.conv(x)
        return y.contiguous(), y.transpose(2, 3).contiguous()


@pytest.mark.parametrize("real", [False, True])
def test_contiguous_aliases_or_copies_as_torch_does(real):
    # 8 x 4 x 4 floats = 512 bytes: the conv's output; contiguous() of a contiguous tensor returns that
    # tensor (no memory), of a transposed view a new 512-byte copy.
    p = profile(_Contiguous(), (3, 4, 4), real=real)
    assert p.totals.activation_bytes == 512 + 512
    assert [r.activation_bytes for r in p.layers] == [512, 0, 0, 512]   # conv, contiguous, transpose, contiguous


# ---------------------------------------------------------------- fault 2: attention

class _ConvAttention(nn.Module):
    """Issue 14's example: a 1x1 conv 3 -> 16 on 8x8, then self-attention over the 64 tokens."""

    def __init__(self):
        super().__init__()
        self.conv, self.attn = nn.Conv2d(3, 16, 1), nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x):
        t = self.conv(x).flatten(2).transpose(1, 2)   # (N, 64, 16)
        return self.attn(t, t, t, need_weights=False)[0]


@pytest.mark.parametrize("train", [False, True])   # eval + no_grad: torch's fused fast path; train: the ops
@pytest.mark.parametrize("real", [False, True])
def test_multihead_attention_199680(train, real):
    # conv 64*16*3 = 3,072; q/k/v 3 * 64*16*16 = 49,152; QK^T 64*64*16 = 65,536; AV 65,536; out 64*16*16 = 16,384
    p = profile(_ConvAttention(), (3, 8, 8), train=train, real=real)
    assert p.totals.macs == 3_072 + 49_152 + 65_536 + 65_536 + 16_384 == 199_680
    assert p.uncounted == [] and p.depth == 3   # conv, in-projection, out-projection


def test_multihead_attention_options_by_hand():
    # kdim 8, vdim 12, a learned bias key/value (+1 key) and a zero key (+1): L = 5 queries, S = 7 keys,
    # N = 2, E = 16, 4 heads. Per sequence: q 5*16*16 = 1,280; k 7*16*8 = 896; v 7*16*12 = 1,344;
    # QK^T and AV 2 * 5*9*16 = 1,440; out 5*16*16 = 1,280 -> 6,240; x 2 sequences = 12,480.
    m = nn.MultiheadAttention(16, 4, kdim=8, vdim=12, add_bias_kv=True, add_zero_attn=True)
    q, k, v = torch.zeros(5, 2, 16), torch.zeros(7, 2, 8), torch.zeros(7, 2, 12)

    class _Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = m

        def forward(self, x):
            return self.attn(x, k, v)[0]   # need_weights=True: the bmm/softmax path, weights averaged

    p = profile(_Cross(), (5, 2, 16), batch_size=5)
    assert p.totals.macs == 12_480 == _flop_counter_macs(_Cross().train(), q)
    full = profile(_Cross(), (5, 2, 16), batch_size=5, count="all")
    biases = 2 * (5 * 16 + 7 * 16 + 7 * 16 + 5 * 16)   # in-projection biases on q, k, v; out-projection bias
    scores = 2 * 4 * 5 * 9   # N x heads x L x keys
    elementwise = 2 * 5 * 16 + scores   # q scaled by 1/sqrt(head_dim); weights averaged over the heads
    assert full.totals.flops == 2 * 12_480 + biases + scores + elementwise   # + softmax, one FLOP per score


class _SDPA(nn.Module):
    def __init__(self, causal=False):
        super().__init__()
        self.causal = causal

    def forward(self, q):
        k, v = q[:, :, :6], q[..., :5]   # k (2, 4, 6, 8), v (2, 4, 10, 5): slices
        return nn.functional.scaled_dot_product_attention(q, k, v[:, :, :6], is_causal=self.causal)


def test_scaled_dot_product_attention_by_hand():
    # q (2, 4, 10, 8), k (2, 4, 6, 8), v (2, 4, 6, 5): QK^T 8 * 10*6*8 = 3,840; AV 8 * 10*6*5 = 2,400
    p = profile(_SDPA(), (2, 4, 10, 8), batch_size=2)
    with nn.attention.sdpa_kernel(nn.attention.SDPBackend.MATH):   # the math kernel: bmm's flop_counter sees
        assert p.totals.macs == 3_840 + 2_400 == _flop_counter_macs(_SDPA(), torch.zeros(2, 4, 10, 8))
    full = profile(_SDPA(causal=True), (2, 4, 10, 8), batch_size=2, count="all")
    # softmax 8*10*6 = 480; scale 8*10*8 = 640; causal mask 480
    assert full.totals.flops == 2 * 6_240 + 480 + 640 + 480


class _Einsum(nn.Module):
    def __init__(self, eq, *shapes):
        super().__init__()
        self.eq, self.others = eq, [torch.zeros(s) for s in shapes]

    def forward(self, x):
        return torch.einsum(self.eq, x, *self.others)


@pytest.mark.parametrize("eq,shapes,macs,sums", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 0),                       # batched matmul
    ("B G H I D, B G H J D -> B G H I J", [(1, 2, 3, 4, 5), (1, 2, 3, 6, 5)], 2 * 3 * 4 * 6 * 5, 0),   # MaxViT
    ("...ij,...jk", [(2, 3, 4), (4, 5)], 2 * 3 * 4 * 5, 0),                             # ellipsis, implicit out
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5, 0),              # left to right
    ("ij,jk->i", [(2, 3), (3, 4)], 2 * 3, 3 * 4),            # k only in operand 2: summed first (12 adds)
    ("bi,bj->bij", [(2, 3), (2, 4)], 0, 2 * 3 * 4),              # outer product: 24 multiplications
])
def test_einsum_by_hand(eq, shapes, macs, sums):
    m = _Einsum(eq, *shapes[1:])
    p = profile(m, shapes[0], batch_size=shapes[0][0])
    assert p.totals.macs == macs and p.uncounted == []
    assert profile(m, shapes[0], batch_size=shapes[0][0], count=("elementwise",)).totals.flops == sums
    # torch lowers a contraction to bmm (an outer product to mul, which flop_counter does not count)
    assert _flop_counter_macs(m, torch.zeros(shapes[0])) == macs


class _Matmuls(nn.Module):
    def forward(self, a):   # a (3, 4, 5)
        b = torch.zeros(3, 5, 6)
        y = torch.bmm(a, b)                                   # 3*4*6 outputs x K 5 = 360
        y = torch.baddbmm(y, a, b, beta=0.5)                  # 360 (+ 72 adds of the input)
        z = a.unsqueeze(0) @ torch.zeros(2, 3, 5, 6)          # broadcast: (2, 3, 4, 6) x K 5 = 720
        w = torch.zeros(5).__rmatmul__(a)                     # a @ v: (3, 4) x K 5 = 60
        u = torch.addmm(torch.zeros(4), a[0], torch.zeros(5, 4))   # 4*4 x K 5 = 80
        return y.sum() + z.sum() + w.sum() + u.sum() + torch.matmul(a[0, 0], torch.zeros(5))   # 1 x K 5 = 5


def test_matmul_bmm_baddbmm_addmm_by_hand():
    p = profile(_Matmuls(), (3, 4, 5), batch_size=3)
    assert p.totals.macs == 360 + 360 + 720 + 60 + 80 + 5
    # flop_counter has no rule for aten::mv, the two matrix-vector products (60 + 5)
    assert _flop_counter_macs(_Matmuls(), torch.zeros(3, 4, 5)) == 360 + 360 + 720 + 80


# ---------------------------------------------------------------- recurrent layers

class _ConvLSTM(nn.Module):
    """Issue 14's example: conv 1 -> 8 (3x3, padding 1) on 1x4x10; the 10 columns are 10 steps of
    8 x 4 = 32 features into an LSTM(32, 16); a Linear(16, 5) on the last step."""

    def __init__(self):
        super().__init__()
        self.conv, self.lstm, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.LSTM(32, 16), nn.Linear(16, 5)

    def forward(self, x):
        seq = self.conv(x).flatten(1, 2).permute(2, 0, 1)   # (T=10, N, 32)
        return self.fc(self.lstm(seq)[0][-1])


@pytest.mark.parametrize("real", [False, True])
def test_conv_lstm_fc_33680(real):
    p = profile(_ConvLSTM(), (1, 4, 10), real=real)
    # conv 4*10*8*9 = 2,880; LSTM 10 steps x 4 gates x 16 x (32 + 16) = 30,720; fc 16*5 = 80
    assert p.totals.macs == 2_880 + 30_720 + 80 == 33_680 and p.uncounted == []
    full = profile(_ConvLSTM(), (1, 4, 10), count=("bias", "activation", "elementwise"), real=real)
    lstm = full.layer("lstm")
    # per step: biases b_ih + b_hh 2 * 64 adds; 3 sigmoids + 2 tanh on 16 units; f*c, i*g, +, o*tanh(c)
    assert lstm.flops == 10 * (128 + 5 * 16 + 4 * 16)


def _rnn_macs(kind, input_size, hidden, layers, bidirectional, proj, positions):
    """By hand: per (step, sequence) position, layer and direction, gates x H x (layer input + recurrent
    input) multiply-adds, + H x proj for the LSTM projection. A layer above the first reads D x H_out."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    d, h_out = 1 + bidirectional, proj or hidden
    per = sum(gates * hidden * ((input_size if i == 0 else d * h_out) + h_out) + hidden * proj
              for i in range(layers)) * d
    return positions * per


@pytest.mark.parametrize("kind,layers,bidirectional,proj,batch_first,bias", [
    ("LSTM", 1, False, 0, False, True), ("LSTM", 2, True, 0, True, False), ("LSTM", 2, True, 3, False, True),
    ("GRU", 3, False, 0, True, True), ("GRU", 2, True, 0, False, False),
    ("RNN", 2, True, 0, True, True), ("RNN", 1, False, 0, False, False)])
def test_recurrent_layers_by_hand(kind, layers, bidirectional, proj, batch_first, bias):
    kw = {"proj_size": proj} if proj else {}
    if kind == "RNN":
        kw["nonlinearity"] = "relu" if layers == 1 else "tanh"
    rnn = getattr(nn, kind)(6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                            bias=bias, **kw)
    shape = (2, 7, 6) if batch_first else (7, 2, 6)   # 7 steps x 2 sequences x 6 features
    expect = _rnn_macs(kind, 6, 5, layers, bidirectional, proj, 14)
    for real in (False, True):
        p = profile(rnn, shape, batch_size=shape[0], real=real)
        assert p.totals.macs == expect and p.uncounted == [] and p.depth == layers
    assert p.output_shapes[0] == tuple(rnn(torch.zeros(shape))[0].shape)


class _Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 5)

    def forward(self, x):   # (T=7, N=2, 6), sequence lengths 7 and 3: 10 positions
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([7, 3]))
        return nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0])[0]


def test_packed_sequence_counts_real_positions():
    for real in (False, True):
        p = profile(_Packed(), (7, 2, 6), batch_size=7, real=real)
        assert p.totals.macs == _rnn_macs("GRU", 6, 5, 1, False, 0, 10)


@pytest.mark.parametrize("cell,gates", [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_recurrent_cells_by_hand(cell, gates):
    p = profile(cell(4, 3), (2, 4), batch_size=2)
    assert p.totals.macs == 2 * gates * 3 * (4 + 3) and p.uncounted == []


# ---------------------------------------------------------------- faults 4-6: scripted, fp16, shapes

def _small_cnn():
    """Issue 14's model: Conv(3, 8, 3, p1) - ReLU - GAP - Linear(8, 4) at 3x16x16.
    MACs: 16*16*8*27 = 55,296 + 8*4 = 32 -> 55,328."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def test_scripted_and_traced_models_are_refused_in_one_line():
    scripted = torch.jit.script(_small_cnn())
    with pytest.raises(UnsupportedModelError, match=r"'\(model\)'.*TorchScript.*eager nn.Module") as e:
        profile(scripted, (3, 16, 16))
    assert "\n" not in str(e.value)
    inner = _small_cnn()
    inner[0] = torch.jit.trace(inner[0], torch.zeros(1, 3, 16, 16))
    with pytest.raises(UnsupportedModelError, match=r"module '0' of Sequential is TorchScript"):
        profile(inner, (3, 16, 16))


def test_torch_compile_wrapper_profiles_the_eager_model():
    assert profile(torch.compile(_small_cnn()), (3, 16, 16)).totals.macs == 55_328


@pytest.mark.parametrize("dtype,size", [(torch.float16, 2), (torch.bfloat16, 2), (torch.float32, 4)])
def test_input_dtype_follows_the_parameters(dtype, size):
    p = profile(_small_cnn().to(dtype), (3, 16, 16))
    # conv 8*16*16 = 2,048 + ReLU 2,048 + pool 8 + fc 4 = 4,108 values (flatten is a view)
    assert p.totals.macs == 55_328 and p.totals.activation_bytes == 4_108 * size
    assert p.totals.input_bytes == 3 * 16 * 16 * size and p.totals.param_bytes == (224 + 36) * size


def test_mismatched_input_dtype_names_the_fix():
    with pytest.raises(Exception, match=r"raised .* in layer '0'.*--dtype"):
        profile(_small_cnn(), (3, 16, 16), dtype=torch.float16)


def _clip_model():
    return nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.Conv3d(8, 8, 3, padding=1))


def test_a_4_tuple_is_one_clip_for_a_conv3d_model():
    p = profile(_clip_model(), (3, 4, 16, 16))
    assert p.input_shape == (1, 3, 4, 16, 16) and p.output_shapes == [(1, 8, 4, 16, 16)]
    assert p.totals.batch_size == 1
    per_clip = 2 * 2 * (8 * 4 * 16 * 16 * 4)   # 2 x (two conv outputs of 8x4x16x16 floats)
    assert p.totals.train_bytes_per_image == per_clip
    assert profile(_clip_model(), (2, 3, 4, 16, 16)).totals.batch_size == 2


def test_input_the_model_cannot_read_is_refused_with_both_readings():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    with pytest.raises(ProfileOptionError, match=r"ambiguous.*batch of 3 inputs \(4, 4, 4\).*\(1, 3, 4, 4, 4\)"):
        profile(mlp, (3, 4, 4, 4))
    assert profile(mlp, (3, 4, 4, 4), batch_size=3).input_shape == (3, 4, 4, 4)
    assert profile(nn.Sequential(nn.Flatten(), nn.Linear(48, 2)), (3, 4, 4)).input_shape == (1, 3, 4, 4)


def test_conv1d_model_reads_3_axes_as_a_batch():
    m = nn.Conv1d(4, 2, 3)
    assert profile(m, (4, 10)).input_shape == (1, 4, 10)
    assert profile(m, (5, 4, 10)).input_shape == (5, 4, 10)


# ---------------------------------------------------------------- fault 7: receptive fields through gates

class _SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


def test_receptive_field_through_a_gate():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), _SE(8), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1))
    p = profile(m, (3, 32, 32))
    # r: 3 -> 3 + 2*2 = 7 -> 7 + 2*4 = 15; j: 2, 4, 8; P: 1, 1 + 1*2 = 3, 3 + 1*4 = 7 (Araujo et al. 2019, eq. 1-2)
    rf = p.receptive_field
    assert (rf.size, rf.stride, rf.padding, rf.gated) == ((15, 15), (8, 8), (7, 7), True)
    assert str(p.layer("3").rf) == "15 /8 p7 +gate" and not p.layer("0").rf.gated
    assert "also depends on the whole input through a gate" in p.to_text()


def test_efficientnet_field_is_local_and_gated():
    p = profile(_build(torchvision.models.efficientnet_b0), (3, 224, 224))
    assert p.receptive_field.gated and not p.receptive_field.is_global and p.receptive_field.stride == (32, 32)


# ---------------------------------------------------------------- the torchvision sweep

def _tv_case(name):
    """The builder keywords and input side of ``name``'s first published weights."""
    w = torchvision.models.get_model_weights(name)
    first = list(w)[0]
    kw = {}
    if name == "googlenet":   # torchvision drops GoogLeNet's aux heads after loading (num_params without them)
        kw = {"aux_logits": False, "init_weights": False}
    elif name == "inception_v3":   # ... and keeps Inception-v3's (num_params with them; _ops in eval without)
        kw = {"init_weights": False}
    elif name.startswith("vit_"):   # ViT's image size is a build argument (vit_h_14's SWAG weights: 518)
        kw = {"image_size": first.meta["min_size"][0]}
    return kw, first.transforms().crop_size[0], first.meta


@pytest.mark.parametrize("name", torchvision.models.list_models(module=torchvision.models))
def test_every_torchvision_classifier_matches_its_metadata(name):
    # torchvision's weight metadata: "_ops" is conv + linear (+ attention matmul) multiply-adds in G,
    # rounded to 3 decimals (resnet50: 4.089, the well-known 4.09 GMACs; the docs table calls it GFLOPS),
    # "num_params" the declared parameters.
    kw, side, meta = _tv_case(name)
    p = profile(_build(lambda: torchvision.models.get_model(name, **kw)), (3, side, side))
    assert (round(p.totals.macs / 1e9, 3), p.totals.params) == (meta["_ops"], meta["num_params"])
    assert not p.uncounted
