"""Content-addressed image folder: a blob's name is the sha256 of its bytes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write, png_bytes, sha256


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / f"{sha}.png"

    @staticmethod
    def sha(data: bytes) -> str:
        return sha256(data)

    def put_bytes(self, data: bytes) -> str:
        sha = sha256(data)
        p = self.path(sha)
        if not p.exists():  # same content, same name: writing twice is a no-op
            atomic_write(p, data)
        return sha

    def put_image(self, im: Image.Image) -> str:
        return self.put_bytes(png_bytes(im))

    def get_bytes(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise InputError(f"image blob {sha[:12]}… is missing from {self.root} (the database names an image "
                             "this home does not hold: was the home's folder moved away from its rows?)") from None

    def get_image(self, sha: str) -> Image.Image:
        with Image.open(io.BytesIO(self.get_bytes(sha))) as im:
            im.load()
            return im.copy()

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()
