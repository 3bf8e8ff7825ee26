"""He et al.'s ImageNet ResNets and the blocks that came after ResNet (``reslab.beyond``): chapters 7 and 8
print their counts and check them against the papers, so the counts must be the papers' nets."""
import pytest
import torch
from torch import nn

from reslab import beyond, count_parameters
from reslab.experiments import convolution_work
from reslab.models import BasicBlock


@pytest.mark.parametrize("depth, parameters", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_imagenet_resnets_have_torchvisions_parameter_counts(depth, parameters):
    net = beyond.imagenet_resnet(depth)
    assert count_parameters(net) == parameters  # torchvision.models.resnet{18,34,50}, 1000 classes
    assert net.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("depth, gflops", [(18, 1.8), (34, 3.6), (50, 3.8)])
def test_imagenet_resnets_do_he_et_als_multiply_adds(depth, gflops):
    net = beyond.imagenet_resnet(depth, stride_in_1x1=True).eval()
    _, work = convolution_work(net, torch.zeros(1, 3, 224, 224))
    assert abs(work / 1e9 - gflops) / gflops < 0.03


def test_stride_in_the_3x3_costs_more_than_in_the_1x1():
    x = torch.zeros(1, 3, 224, 224)
    in_3x3 = convolution_work(beyond.imagenet_resnet(50).eval(), x)[1]
    in_1x1 = convolution_work(beyond.imagenet_resnet(50, stride_in_1x1=True).eval(), x)[1]
    assert in_3x3 > in_1x1 * 1.05
    with pytest.raises(ValueError, match="not one of"):
        beyond.imagenet_resnet(20)


def test_inverted_residual_adds_the_shortcut_only_where_shapes_agree():
    x = torch.randn(2, 8, 6, 6)
    same = beyond.InvertedResidual(8, 8).eval()
    nn.init.zeros_(same.bn3.weight)  # the branch outputs 0: the block must be the identity
    assert torch.equal(same(x), x)
    strided = beyond.InvertedResidual(8, 16, stride=2).eval()
    assert not strided.residual and strided(x).shape == (2, 16, 3, 3)
    inner = 8 * 6  # 1x1 expand, depthwise 3x3, 1x1 project, each with a BatchNorm
    assert count_parameters(same) == 8 * inner + 2 * inner + inner * 9 + 2 * inner + inner * 8 + 2 * 8


def test_squeeze_excite_gates_each_channel_with_one_number_in_0_1():
    se = beyond.SqueezeExcite(32, reduction=8)
    x = torch.rand(3, 32, 5, 5) + 0.1
    gate = se(x) / x
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate))  # the same gate at every position
    assert gate.min() > 0 and gate.max() < 1
    assert count_parameters(se) == 32 * 4 + 4 + 4 * 32 + 32
    block = BasicBlock(32, 32, shortcut=nn.Identity(), scale=se)
    assert count_parameters(block) == count_parameters(BasicBlock(32, 32, shortcut=nn.Identity())) + count_parameters(se)


def test_convnext_block_starts_near_the_identity_and_counts_its_parameters():
    x = torch.randn(2, 16, 9, 9)
    block = beyond.ConvNeXtBlock(16, layer_scale=0.0)
    assert torch.equal(block(x), x)
    assert (beyond.ConvNeXtBlock(16)(x) - x).abs().max() < 1e-4  # LayerScale 1e-6: a whisper of the branch
    # depthwise 7x7 + bias, LayerNorm, 1x1 to 4C + bias, 1x1 back + bias, LayerScale
    assert count_parameters(block) == 16 * 49 + 16 + 2 * 16 + 16 * 64 + 64 + 64 * 16 + 16 + 16
