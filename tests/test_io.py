"""pbb.io: atomic writes that a colleague can read, and output directories checked before the work."""

import os
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.io import ensure_writable_dir, write_json, write_jsonl, write_text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_mode_an_ordinary_open_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "b.json", {"a": 1})
        write_jsonl(tmp_path / "c.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json", "c.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_an_output_directory_below_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PbbError, match=r"file is a file, not a directory"):
        ensure_writable_dir(tmp_path / "file" / "run")
    with pytest.raises(PbbError, match="not a directory"):
        ensure_writable_dir(tmp_path / "file")
    assert ensure_writable_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert Path(tmp_path / "new" / "run").is_dir()
