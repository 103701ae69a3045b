"""MACs and parameters counted from ONNX graphs: hand-computed numbers and torch parameter counts."""

from __future__ import annotations

import csv
import json

import pytest

from archai_aml.errors import TargetError
from archai_aml.onnx.info import onnx_model_info, write_layers_csv
from tests.ort_models import TinyClassifier, export, hand_built_model, seg_net


def test_hand_built_model_macs_and_params(tmp_path) -> None:
    info = onnx_model_info(hand_built_model(tmp_path / "hand.onnx"))
    by_name = {layer.name: layer for layer in info.layers}
    assert by_name["conv"].macs == 1 * 4 * 8 * 8 * 3 * 9
    assert by_name["dwconv"].macs == 1 * 4 * 8 * 8 * 1 * 9
    assert by_name["convt"].macs == 1 * 4 * 8 * 8 * 2 * 2 * 2
    assert by_name["convt"].output_shape == [1, 2, 16, 16]
    assert by_name["gemm"].macs == 512 * 5
    assert by_name["matmul"].macs == 5 * 3
    assert by_name["relu1"].macs == 0 and by_name["resize"].params == 0
    assert info.macs == 13839
    assert info.params == 2766
    assert info.unknown_macs_layers == []
    assert by_name["gemm"].params == 5 * 512 + 5


def test_torch_export_matches_torch_parameter_count(tmp_path) -> None:
    path, net = seg_net(tmp_path / "seg.onnx", size=16)
    info = onnx_model_info(path)
    assert info.params == sum(p.numel() for p in net.parameters())
    # MACs by hand for a 16x16 input (width 8, 3 classes):
    expected = (
        16 * 16 * 8 * 3 * 9  # enc1
        + 8 * 8 * 16 * 8 * 9  # down, stride 2
        + 8 * 8 * 16 * 1 * 9  # depthwise
        + 8 * 8 * 16 * 8 * 2 * 2  # transposed conv: input elements * C_out * k*k
        + 16 * 16 * 3 * 8  # 1x1 head
    )
    assert info.macs == expected


def test_gemm_from_linear_and_dynamic_batch(tmp_path) -> None:
    torch_model = TinyClassifier()
    path = export(torch_model, tmp_path / "cls.onnx", (1, 3, 8, 8), dynamic_batch=True)
    info = onnx_model_info(path)  # symbolic batch -> 1
    assert info.params == sum(p.numel() for p in torch_model.parameters())
    assert info.macs == 8 * 8 * 6 * 1 * 9 + 6 * 4
    batch4 = onnx_model_info(path, input_shapes={"input": [4, 3, 8, 8]})
    assert batch4.macs == 4 * info.macs


def test_layers_csv(tmp_path) -> None:
    info = onnx_model_info(hand_built_model(tmp_path / "hand.onnx"))
    out = write_layers_csv(info.layers, tmp_path / "layers.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["name"] for r in rows][:3] == ["conv", "relu1", "dwconv"]
    assert json.loads(rows[0]["output_shape"]) == [1, 4, 8, 8]
    assert sum(int(r["macs"]) for r in rows) == info.macs
    assert sum(int(r["params"]) for r in rows) == info.params


def test_unreadable_models_raise_target_error(tmp_path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a protobuf" * 50)
    with pytest.raises(TargetError, match="not a readable ONNX model"):
        onnx_model_info(garbage)
    with pytest.raises(TargetError, match="does not exist"):
        onnx_model_info(tmp_path / "missing.onnx")
