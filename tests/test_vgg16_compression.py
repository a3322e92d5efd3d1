"""The paper's VGG-16 compression figures, checked on keras.applications.VGG16.

Novikov et al. (2015) replace VGG-16's fc6 (``fc1`` in Keras, 25088 x 4096)
and fc7 (``fc2``, 4096 x 4096) by TT-layers with modes
25088 = 2*7*8*8*7*4 and 4096 = 4^6. Only parameter counts are checked (no
ImageNet weights are needed: ``weights=None``). The paper quotes the ratios
truncated to integers (119,537,664 / 3,168 = 37,732.8 is "37,732x").
"""

import gc

import keras
import numpy as np
import pytest

from keras_tt.layers import TTDense
from keras_tt.tensorize import tensorize

FC1_MODES = ((2, 7, 8, 8, 7, 4), (4, 4, 4, 4, 4, 4))
FC2_MODES = ((4, 4, 4, 4, 4, 4), (4, 4, 4, 4, 4, 4))
VGG16_PARAMS = 138_357_544


def settings(modes, rank=4):
    return {"tt_rank": rank, "in_modes": modes[0], "out_modes": modes[1]}


@pytest.fixture(scope="module")
def vgg16():
    model = keras.applications.VGG16(weights=None)
    yield model
    del model
    gc.collect()


def test_fc1_and_fc2_at_rank_4_through_the_pass(vgg16):
    tt_model = tensorize(
        vgg16,
        layers={"fc1": settings(FC1_MODES), "fc2": settings(FC2_MODES)},
        verbose=0,
    )
    report = tt_model.tensorize_report
    fc1, fc2 = report.layers
    assert (fc1.name, fc1.tt_params, fc1.dense_params) == (
        "fc1",
        2_016,
        25_088 * 4_096,
    )
    assert int(fc1.compression) == 50_972
    assert (fc2.name, fc2.tt_params) == ("fc2", 1_152)
    assert report.kernel_params_after == 3_168
    assert report.kernel_params_before == 119_537_664
    assert int(report.kernel_compression) == 37_732
    assert report.params_before == VGG16_PARAMS == vgg16.count_params()
    assert report.params_after == tt_model.count_params()
    assert round(report.compression, 1) == 7.4
    # The convolutions keep their weights.
    conv, new_conv = (
        vgg16.get_layer("block5_conv3"),
        tt_model.get_layer("block5_conv3"),
    )
    np.testing.assert_array_equal(conv.kernel.numpy(), new_conv.kernel.numpy())
    assert isinstance(tt_model.get_layer("fc1"), TTDense)
    assert type(tt_model.get_layer("predictions")) is keras.layers.Dense


def test_fc1_alone_whole_model_compression(vgg16):
    tt_model = tensorize(vgg16, layers={"fc1": settings(FC1_MODES)}, verbose=0)
    report = tt_model.tensorize_report
    assert int(report.layers[0].compression) == 50_972
    assert report.params_after == VGG16_PARAMS - 25_088 * 4_096 + 2_016
    assert round(report.compression, 1) == 3.9


@pytest.mark.parametrize(
    "rank, tt_params, ratio",
    [
        (4, 2_016, 50_972),
        (2, 528, 194_622),
        (1, 144, 713_614),
    ],
)
def test_fc1_ratios_at_each_rank(rank, tt_params, ratio):
    layer = TTDense(
        4096, tt_rank=rank, in_modes=FC1_MODES[0], out_modes=FC1_MODES[1]
    )
    layer.build((None, 25_088))
    assert layer.num_core_params == tt_params
    assert layer.tt_ranks == (1,) + (rank,) * 5 + (1,)
    assert int(layer.compression_ratio) == ratio
