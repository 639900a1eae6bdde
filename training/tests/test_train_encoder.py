"""Stage A on the device it is given: a CUDA-less box refuses --device cuda by name, and a
run's checkpoint resumes (on whichever device the same command is given)."""
import io
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import torch

from arpgnet import train_encoder
from arpgnet.common import pick_device


class DeviceTest(unittest.TestCase):
    def test_auto_takes_cuda_only_where_pytorch_sees_it(self) -> None:
        with mock.patch("torch.cuda.is_available", return_value=False):
            self.assertEqual(pick_device("auto").type, "cpu")
            with self.assertRaisesRegex(SystemExit, "--device cuda: no CUDA device"):
                pick_device("cuda")
        with mock.patch("torch.cuda.is_available", return_value=True):
            self.assertEqual(pick_device("auto").type, "cuda")
        self.assertEqual(pick_device("cpu").type, "cpu")

    def test_a_short_run_on_the_cpu_trains_saves_and_resumes(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            common = ["--run", d, "--limit", "64", "--batch", "32", "--threads", "1", "--device", "cpu"]
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                train_encoder.main([*common, "--epochs", "1"])
            first = torch.load(Path(d) / "last.pt", map_location="cpu")
            self.assertEqual(first["epoch"], 1)
            self.assertTrue(all(t.device.type == "cpu" for t in first["model"].values()))
            with redirect_stdout(io.StringIO()) as out, redirect_stderr(io.StringIO()):
                train_encoder.main([*common, "--epochs", "2"])
            self.assertIn("resuming", out.getvalue())
            second = torch.load(Path(d) / "last.pt", map_location="cpu")
            self.assertEqual([h["epoch"] for h in second["history"]], [1, 2])
            self.assertEqual(second["history"][0], first["history"][0], "epoch 1 was not trained again")


if __name__ == "__main__":
    unittest.main()
