"""imbus.stat_cache: a file's value is read again exactly when the file changed."""

import os

from imbus.stat_cache import StatCache


def written(path, text):
    with open(path, "w") as file:
        file.write(text)
    return str(path)


def reader(path, reads):
    def load():
        reads.append(path)
        with open(path) as file:
            return file.read()
    return load


def test_a_file_is_read_once_while_it_stays_the_same(tmp_path):
    path = written(tmp_path / "session", "uid=2")
    cache, reads = StatCache(), []
    assert [cache.get(path, reader(path, reads)) for _ in range(3)] == ["uid=2"] * 3
    assert reads == [path]


def test_a_file_replaced_by_a_rename_is_read_again(tmp_path):
    """How session stores save: write a temporary file, rename it over the old one."""
    path = written(tmp_path / "session", "uid=2")
    cache, reads = StatCache(), []
    cache.get(path, reader(path, reads))
    os.replace(written(tmp_path / "tmp", "uid=2"), path)  # same size: the inode tells them apart
    assert cache.get(path, reader(path, reads)) == "uid=2"
    assert len(reads) == 2


def test_a_file_rewritten_in_place_is_read_again(tmp_path):
    path = written(tmp_path / "session", "uid=2")
    cache, reads = StatCache(), []
    cache.get(path, reader(path, reads))
    written(path, "uid=False")
    assert cache.get(path, reader(path, reads)) == "uid=False"


def test_a_removed_file_reads_as_none_and_is_forgotten(tmp_path):
    path = written(tmp_path / "session", "uid=2")
    cache, reads = StatCache(), []
    cache.get(path, reader(path, reads))
    os.unlink(path)
    assert cache.get(path, reader(path, reads)) is None
    assert path not in cache.known and reads == [path]


def test_keep_forgets_the_other_files(tmp_path):
    cache = StatCache()
    paths = []
    for name in ("a", "b", "c"):
        path = written(tmp_path / name, name)
        cache.get(path, reader(path, []))
        paths.append(path)
    cache.keep(paths[1:])
    assert sorted(cache.known) == paths[1:]
