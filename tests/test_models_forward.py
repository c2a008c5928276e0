"""Every registered net trains one step at 32 px (10 and 100 classes) and at 64 px (200
classes, Tiny-ImageNet sized), and `rlo models` prints its real parameter count.

Transformer widths are cut to TEST_WIDTH to keep the suite fast on a CPU; depth, heads,
patch and window sizes stay as registered. Nets with a fixed width ignore it.

The 100-class and 64 px cases of the costly nets run only with RLO_FULL_NET_MATRIX=1 (ten
minutes on a loaded 2-core machine). Each shares its code path with a case that always runs:
- res18 for the ResNets, swin for swin_base, vit_small and vit_tiny (the same builder) for
  vit, vit-l and vit_base, cait_small for cait;
- the pretrained-weight tests for vit_timm's new head and resized position embedding;
- convmixer's own 32 px case, because it uses the same patch-1 layout up to 64 px.
"""

import os

import pytest
import torch
from typer.testing import CliRunner

from rlo_core.losses import rlo_loss
from rlo_core.models import NETS, count_parameters, create_net

# A multiple of every head count in the registry (6, 8 and 16), so every net accepts it.
TEST_WIDTH = 96
CASES = [(10, 32), (100, 32), (200, 64)]
COSTLY_NETS = {"res34", "res50", "res101", "swin_base", "vit", "vit-l", "vit_base", "vit_timm",
               "cait", "convmixer"}
FULL_MATRIX = os.environ.get("RLO_FULL_NET_MATRIX") == "1"


@pytest.fixture(scope="module")
def table_counts() -> dict[str, int]:
    """Return {net name: parameter count} parsed from `rlo models` at 10 classes, 32 px."""
    from rlo_cli.app import app
    # One line per row, so every cell can be read back. COLUMNS is read at each print, so
    # the shared console is not left at a fixed width for later tests.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "400")
        result = CliRunner().invoke(app, ["models", "--num-classes", "10", "--image-size", "32",
                                          "--dim-head", str(TEST_WIDTH)])
    assert result.exit_code == 0, result.output
    counts = {}
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[5].replace(",", "").isdigit():
            counts[cells[0]] = int(cells[5].replace(",", ""))
    return counts


@pytest.mark.parametrize("classes,size", CASES, ids=[f"{c}cls-{s}px" for c, s in CASES])
@pytest.mark.parametrize("name", sorted(NETS))
def test_net_trains_one_step(name, classes, size, table_counts):
    if name in COSTLY_NETS and (classes, size) != (10, 32) and not FULL_MATRIX:
        pytest.skip("costly net: set RLO_FULL_NET_MATRIX=1 to run this case")
    torch.manual_seed(0)
    model = create_net(name.upper(), classes, size, dim_head=TEST_WIDTH, load_pretrained=False)
    images = torch.randn(2, 3, size, size)
    targets = torch.tensor([0, classes - 1])

    logits = model(images)
    loss = rlo_loss(logits, targets)
    loss.backward()

    assert logits.shape == (2, classes)
    assert torch.isfinite(loss)
    without_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert without_grad == []
    if (classes, size) == (10, 32):
        assert table_counts[name] == count_parameters(model)
