"""The training-data pack: the same files back at the same paths, damage named, targets still paired."""
import io
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

from arpgnet import pack
from arpgnet.common import load_targets, write_targets


def tree(root: Path) -> dict[str, bytes]:
    files = {
        "data/fer2013/train/happy/Training_1.jpg": b"\xff\xd8 a face",
        "data/fer2013/train/sad/Training_2.jpg": bytes(range(256)) * 3,
        "data/fer2013/val/happy/PublicTest_3.jpg": b"",
        "data/ckplus48/anger/S010_004_00000017.png": b"\x89PNG another",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "data" / "videos").mkdir(parents=True)
    (root / "data" / "videos" / "clip.mp4").write_bytes(b"not packed")
    return files


class PackTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.src = self.dir / "shared"
        self.files = tree(self.src)
        self.out = self.dir / "pack.npz"

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def test_the_same_bytes_at_the_same_paths_and_nothing_else(self) -> None:
        info = pack.pack(self.src, self.out)
        self.assertEqual(info["files"], 4)
        to = self.dir / "elsewhere"
        self.assertEqual(pack.unpack(self.out, to)["written"], 4)
        got = {p.relative_to(to).as_posix(): p.read_bytes() for p in to.rglob("*") if p.is_file()}
        self.assertEqual(got, self.files)
        self.assertEqual(pack.unpack(self.out, to)["already_there"], 4)  # a second unpack rewrites nothing

    def test_a_damaged_pack_names_the_file_and_writes_nothing_of_it(self) -> None:
        pack.pack(self.src, self.out)
        z = dict(np.load(self.out))
        names = z["names"].tobytes().decode().split("\n")
        k = names.index("data/fer2013/train/sad/Training_2.jpg")
        at = int(z["sizes"][:k].sum()) + 5
        z["blob"] = z["blob"].copy()
        z["blob"][at] ^= 1
        with self.out.open("wb") as fh:
            np.savez(fh, **z)
        to = self.dir / "elsewhere"
        with self.assertRaisesRegex(SystemExit, "damaged: data/fer2013/train/sad/Training_2.jpg"):
            pack.unpack(self.out, to)
        self.assertFalse((to / "data/fer2013/train/sad/Training_2.jpg").exists())

    def test_missing_folders_and_foreign_files_are_named(self) -> None:
        with self.assertRaisesRegex(SystemExit, "ckplus48x is not a folder"):
            pack.pack(self.src, self.out, ("data/fer2013/train", "data/ckplus48x"))
        self.out.write_bytes(b"not a pack")
        with self.assertRaisesRegex(SystemExit, "is not a training-data pack"):
            pack.unpack(self.out, self.dir / "x")

    def test_targets_written_beside_one_data_folder_pair_with_the_unpacked_copy(self) -> None:
        pack.pack(self.src, self.out)
        to = self.dir / "elsewhere"
        pack.unpack(self.out, to)
        here = [str(self.src / "data/fer2013/train/happy/Training_1.jpg"), str(self.src / "data/fer2013/train/sad/Training_2.jpg")]
        there = [str(to / "data/fer2013/train/happy/Training_1.jpg"), str(to / "data/fer2013/train/sad/Training_2.jpg")]
        probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
        f = self.dir / "targets.npz"
        write_targets(f, probs, np.array([0, 1]), here)
        np.testing.assert_allclose(np.exp(load_targets(f, there, np.array([0, 1]))), probs, rtol=1e-6)
        with self.assertRaisesRegex(SystemExit, "other faces"):
            load_targets(f, there[::-1], np.array([1, 0]))

    def test_command_line(self) -> None:
        with redirect_stdout(io.StringIO()) as out:
            pack.main(["--shared", str(self.src), "--out", str(self.out)])
        self.assertIn('"files": 4', out.getvalue())
        with self.assertRaises(SystemExit):
            with redirect_stderr(io.StringIO()):
                pack.main(["--unpack", str(self.out)])


if __name__ == "__main__":
    unittest.main()
