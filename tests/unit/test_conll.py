from __future__ import annotations

import io
from pathlib import Path

import pytest

from bioner.corpus.conll import load_conll, read_conll, write_conll
from bioner.corpus.validate import validate_conll
from bioner.errors import CorpusFormatError
from tests.helpers import real_data_dir


def write(tmp_path: Path, data: bytes, name: str = "c.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_tab_file_with_docstart_crlf_bom_and_trailing_spaces(tmp_path: Path) -> None:
    data = ("\ufeff-DOCSTART-\tO\r\n\r\nAspirin\tB-Chemical  \r\ncauses\tO\r\nulcers\tB-Disease\r\n"
            "\r\n\r\n-DOCSTART-\tO\r\nNo\tO\r\n").encode()
    sents = load_conll(write(tmp_path, data))
    assert [s.tokens for s in sents] == [["Aspirin", "causes", "ulcers"], ["No"]]
    assert sents[0].tags == ["B-Chemical", "O", "B-Disease"]
    assert sents[0].source.endswith("c.txt:3")
    assert sents[1].meta == {"doc": "2"}


def test_jnlpba_four_columns_token_first_tag_last(tmp_path: Path) -> None:
    data = b"IL-2 NN B-GENE B-DNA\ngene NN I-GENE I-DNA\n\n"
    (sent,) = load_conll(write(tmp_path, data))
    assert sent.tokens == ["IL-2", "gene"] and sent.tags == ["B-DNA", "I-DNA"]


def test_untagged_file_reads_tokens_only(tmp_path: Path) -> None:
    (sent,) = load_conll(write(tmp_path, b"Aspirin\nworks\n"))
    assert sent.tokens == ["Aspirin", "works"] and sent.tags is None


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (b"a\tO\nb\tO\tX\n", 2, "expected 2 columns (as on line 1), got 3"),
        (b"a\tO\n\tB-X\n", 2, "empty token"),
        (b"a\tO\nb\tB_Gene\n", 2, "unknown tag shape 'B_Gene'"),
        (b"a\tO\n\nb\xff\xfe\tO\n", 3, "non-UTF-8 bytes"),
        (b"a\tO\nb\tE-Gene\n", 2, "unknown tag shape 'E-Gene'"),
    ],
)
def test_bad_input_names_path_and_line(tmp_path: Path, data: bytes, line: int, problem: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(CorpusFormatError) as info:
        load_conll(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert problem in str(info.value)


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    data = b"a\tO\nb\tI-Gene\n\nc\tB-X\tZ\n\nd\tB-Chemical\ne\tI-Disease\n\nf\tbad\n"
    problems = validate_conll(write(tmp_path, data))
    assert [(p.line, p.problem.split(":")[0]) for p in problems] == [
        (2, "invalid IOB2"),
        (4, "expected 2 columns (as on line 1), got 3"),
        (7, "invalid IOB2"),
        (9, "unknown tag shape 'bad' (expected O, B-Type or I-Type)"),
    ]


def test_writer_accepts_open_file() -> None:
    buf = io.StringIO()
    io_path = Path(__file__).parents[1] / "fixtures" / "tiny.conll"
    write_conll(read_conll(io_path), buf)
    assert buf.getvalue() == io_path.read_text(encoding="utf-8")


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError, match="cannot open file"):
        load_conll(tmp_path / "nope.txt")


@pytest.mark.skipif(real_data_dir() is None, reason="real corpora not found (BIONER_DATA_DIR)")
def test_round_trip_byte_for_byte_on_every_shared_file(tmp_path: Path) -> None:
    root = real_data_dir()
    assert root is not None
    files = sorted(root.glob("*/*.txt"))
    files = [f for f in files if f.stem in ("train", "dev", "test")]
    assert len(files) >= 27
    for path in files:
        out = tmp_path / "out.txt"
        write_conll(read_conll(path), out)
        assert out.read_bytes() == path.read_bytes(), path
