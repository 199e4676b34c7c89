"""tools/page_execution.py: how the build runs a page before Sphinx reads it."""

from pathlib import Path

import nbformat
import pytest
from page_execution import _execute

pytestmark = pytest.mark.slow  # starts kernels

PYTHON = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebook(*sources):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata.kernelspec = PYTHON
    return notebook


def test_a_page_kernel_uses_unix_sockets_of_its_own(tmp_path):
    # TCP ports are picked by binding port 0 and letting go: kernels started at the same moment by
    # other processes can be handed the same port (a heartbeat that loses prints a traceback).
    notebook, _, error = _execute(_notebook(
        "import os\nfrom ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\nprint(info['transport'], info['ip'], os.getcwd())"),
        str(tmp_path), timeout=60, allow_errors=False)
    assert error is None
    transport, ip, cwd = notebook.cells[0].outputs[0]["text"].split()
    assert transport == "ipc"
    assert Path(ip).parent.name.startswith("page-kernel-")  # a folder of its own, not the page's
    assert cwd == str(tmp_path)  # the page runs in its own folder, as under myst-nb


def test_a_failing_page_is_reported_not_raised(tmp_path):
    notebook, _, error = _execute(_notebook("x = 1", "assert x == 2, 'the page is wrong'"),
                                  str(tmp_path), timeout=60, allow_errors=False)
    assert error.startswith("CellExecutionError") and "the page is wrong" in error
