"""Per-image decoding to the model's view (issue 24): the evaluation view and the random-resized crop,
with JPEGs decoded at reduced scale. Oracles: torchvision's transforms on the PIL image and the
same function with reduced-scale decoding switched off; the files are made here with Pillow."""
import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from PIL import Image, JpegImagePlugin

from cnnzoo.data import decode, readers
from cnnzoo.data.decode import decode_crop, decode_fit, rrc_params
from cnnzoo.errors import DataFileError

RNG = np.random.default_rng(0)


def chequer(h, w, cell=40):
    """(h, w, 3) uint8 with sharp edges (a chequerboard in red) and ramps (green across, blue down):
    a shift of a few pixels or a turn of the image shows in every comparison below."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([((x // cell + y // cell) % 2) * 200 + 20, x * 255 // w, y * 255 // h], -1).astype(np.uint8)


def save_jpeg(path, a, orientation=1):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(path, quality=95, exif=exif.tobytes())
    return path


@pytest.fixture
def drafts(monkeypatch):
    """The scales (2, 4, 8) at which Pillow's JPEG ``draft`` set a decoding, in call order."""
    seen, real = [], JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        w = self.size[0]
        out = real(self, mode, size)
        seen.append(round(w / out[1][2]) if out else 1)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return seen


def full_scale(fn):
    """``fn()`` with reduced-scale decoding switched off: the same code on the fully decoded image."""
    old, decode._SCALES = decode._SCALES, (1,)
    try:
        return fn()
    finally:
        decode._SCALES = old


def mad(a, b) -> float:
    return float((a.float() - b.float()).abs().mean())


def test_rrc_params_draw_for_draw_as_torchvision():
    # sizes include the fallback cases: a sliver (no attempt fits: centre crop clamped to the ratio),
    # a 1x1 image, and ordinary photos
    for w, h in ((500, 375), (375, 500), (224, 224), (4000, 3000), (1000, 10), (10, 1000), (1, 1), (33, 7)):
        for seed in range(40):
            torch.manual_seed(seed)
            want = T.RandomResizedCrop.get_params(torch.empty(3, h, w), [0.08, 1.0], [3 / 4, 4 / 3])
            got = rrc_params(w, h, torch.Generator().manual_seed(seed))
            assert got == want, (w, h, seed)
    torch.manual_seed(7)
    want = T.RandomResizedCrop.get_params(torch.empty(3, 300, 400), [0.5, 0.6], [1.0, 2.0])
    assert rrc_params(400, 300, torch.Generator().manual_seed(7), (0.5, 0.6), (1.0, 2.0)) == want


def test_decode_fit_of_a_png_is_torchvisions_resize_and_centre_crop(tmp_path):
    for (h, w), size, resize in (((60, 100), 30, None), ((37, 81), 28, 32), ((500, 375), 224, 256), ((24, 24), 32, None)):
        a = RNG.integers(0, 256, (h, w, 3)).astype(np.uint8)
        Image.fromarray(a).save(tmp_path / "a.png")
        want = TF.pil_to_tensor(TF.center_crop(TF.resize(Image.fromarray(a), resize or size), size))
        got = decode_fit(tmp_path / "a.png", size, resize)
        assert got.dtype == torch.uint8 and torch.equal(got, want)
        assert torch.equal(readers.read_image(tmp_path / "a.png", size=size, resize=resize), got)


def test_a_large_jpeg_is_decoded_at_reduced_scale_close_to_the_full_decode(tmp_path, drafts):
    p = save_jpeg(tmp_path / "big.jpg", chequer(1200, 1600))
    got = decode_fit(p, 224, 256)
    # shorter side 1200 -> 1200 / 4 = 300 >= 256 > 1200 / 8 = 150: decoded at 1/4 (400x300)
    assert drafts == [4] and got.shape == (3, 224, 224)
    full = readers.image_tensor(readers.fit(readers.open_image(p), 224, 256))       # the full decode
    assert mad(got, full) < 1.5                  # measured 1.1 (sharp chequer edges); 0.3 on a photo
    assert decode_fit(p, 600).shape == (3, 600, 600) and drafts[-1] == 2          # 1200 / 2 = 600 >= 600
    decode_fit(p, 601)
    assert len(drafts) == 2                                            # 601 needs the full image: no draft
    decode_crop(p, 32, seed=0)
    assert drafts[-1] == 8                       # any crop of >= 8% of the area has >= 256 px a side


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_before_the_crop_at_reduced_scale(tmp_path, orientation):
    # odd sizes: libjpeg's last block at 1/8 scale is partial, and a mirroring orientation puts it first
    a = chequer(1205, 1603)
    p = save_jpeg(tmp_path / "o.jpg", a, orientation)
    tall = orientation >= 5                                       # 5-8 swap width and height (EXIF 2.32, Table 7)
    fitted = decode_fit(p, 64, 80, channels=3)
    assert fitted.shape == (3, 64, 64)
    for seed in (5, 11):
        assert mad(decode_crop(p, 64, seed), full_scale(lambda: decode_crop(p, 64, seed))) < 2.5
    assert mad(fitted, full_scale(lambda: decode_fit(p, 64, 80))) < 2.5
    # what a viewer shows: the green ramp runs left-right when not turned, top-down when turned
    wide = decode_fit(p, 64, 64)
    along_x = (wide[1, :, -1].float() - wide[1, :, 0].float()).abs().mean()
    along_y = (wide[1, -1, :].float() - wide[1, 0, :].float()).abs().mean()
    assert (along_y > 50 > along_x) if tall else (along_x > 50 > along_y)


def test_rotated_phone_photo_is_read_tall(tmp_path):
    stored = np.zeros((1200, 1600, 3), np.uint8)
    stored[:, :800] = (250, 20, 20)                    # left half red, right half blue
    stored[:, 800:] = (20, 20, 250)
    p = save_jpeg(tmp_path / "phone.jpg", stored, orientation=6)        # "rotate 90 degrees clockwise"
    crop = decode_fit(p, 32, 32)                       # displayed 1200 wide, 1600 tall: centre 1200x1200
    assert crop[0, :12].float().mean() > 200 and crop[2, -12:].float().mean() > 200   # red on top, blue below


def test_channels_grey_and_colour(tmp_path):
    g = RNG.integers(0, 256, (40, 50)).astype(np.uint8)
    Image.fromarray(g).save(tmp_path / "g.png")
    grey = decode_fit(tmp_path / "g.png", 32)
    assert grey.shape == (1, 32, 32)
    rgb = decode_fit(tmp_path / "g.png", 32, channels=3)
    assert rgb.shape == (3, 32, 32) and all(torch.equal(rgb[k], grey[0]) for k in range(3))
    assert decode_crop(tmp_path / "g.png", 16, seed=3).shape == (1, 16, 16)
    c = RNG.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    Image.fromarray(c).save(tmp_path / "c.png")
    luma = decode_fit(tmp_path / "c.png", 32, channels=1)
    want = TF.pil_to_tensor(TF.center_crop(TF.resize(Image.fromarray(c).convert("L"), 32), 32))
    assert luma.shape == (1, 32, 32) and (luma.int() - want.int()).abs().max() <= 1   # luma before/after resize


def test_decode_crop_is_torchvisions_crop_and_flip_inside_its_border(tmp_path):
    Image.fromarray(chequer(300, 420, cell=20)).save(tmp_path / "c.png")
    tv = T.Compose([T.RandomResizedCrop(64), T.RandomHorizontalFlip(), T.PILToTensor()])
    for seed in range(12):
        torch.manual_seed(seed)
        want = tv(Image.open(tmp_path / "c.png").convert("RGB"))
        got = decode_crop(tmp_path / "c.png", 64, seed)
        # one Pillow call crops and resizes, so the outermost ring is filtered with the pixels around
        # the crop (torchvision crops first and clamps): inside it, pixel for pixel torchvision's
        assert torch.equal(got[:, 1:-1, 1:-1], want[:, 1:-1, 1:-1]), seed
        assert mad(got, want) < 1.0


def test_decode_crop_is_a_pure_function_of_the_seed(tmp_path):
    p = save_jpeg(tmp_path / "p.jpg", chequer(375, 500))
    assert torch.equal(decode_crop(p, 48, 3), decode_crop(p, 48, 3))
    assert not torch.equal(decode_crop(p, 48, 3), decode_crop(p, 48, 4))
    flips = {}
    for seed in range(8):                        # the draws: the crop's, then torchvision's flip draw
        gen = torch.Generator().manual_seed(seed)
        rrc_params(500, 375, gen)
        flips[seed] = torch.rand(1, generator=gen).item() < 0.5
    assert set(flips.values()) == {True, False}
    for seed, flipped in flips.items():
        plain = decode_crop(p, 48, seed, flip=False)
        assert torch.equal(decode_crop(p, 48, seed), plain.flip(-1) if flipped else plain)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    for fn in (lambda p: decode_fit(p, 32), lambda p: decode_crop(p, 32, 0)):
        with pytest.raises(DataFileError, match=r"cannot read image .*x\.jpg: .*replace or remove the file"):
            fn(tmp_path / "x.jpg")
        with pytest.raises(DataFileError, match=r"missing image file .*nope\.png"):
            fn(tmp_path / "nope.png")
    whole = save_jpeg(tmp_path / "t.jpg", chequer(600, 800))
    (tmp_path / "trunc.jpg").write_bytes(whole.read_bytes()[:3000])                 # cut mid-scan
    with pytest.raises(DataFileError, match="trunc.jpg"):
        decode_fit(tmp_path / "trunc.jpg", 64)
    with pytest.raises(DataFileError, match="channels must be 1"):
        decode_fit(whole, 64, channels=2)


def test_read_image_set_fits_each_image_before_it_opens_the_next(tmp_path, monkeypatch):
    paths = []
    for i in range(3):
        paths.append(save_jpeg(tmp_path / f"{i}.jpg", chequer(120 + 10 * i, 160)))
    events, real_open, real_crop = [], Image.open, Image.Image.crop
    monkeypatch.setattr(Image, "open", lambda *a, **k: events.append("open") or real_open(*a, **k))
    monkeypatch.setattr(Image.Image, "crop", lambda *a, **k: events.append("fit") or real_crop(*a, **k))
    x, kept, bad, note = readers.read_image_set(paths, size=32)
    assert events == ["open", "fit"] * 3                     # never two full-size images held at once
    assert x.shape == (3, 3, 32, 32) and kept == [0, 1, 2] and bad == []
    assert torch.equal(x[1], decode_fit(paths[1], 32))
